using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace RlhfGym.Models.Checkpoints;

/// <summary>One tensor's entry in a safetensors header.</summary>
public sealed record SafeTensorEntry(string Name, string DType, long[] Shape, long Begin, long End);

/// <summary>
/// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON
/// (name → {dtype, shape, data_offsets:[begin,end]}, optional "__metadata__" of strings), then the raw little-endian
/// tensor bytes, offsets relative to the end of the header. Everything read is validated before any tensor is made.
/// </summary>
public static class SafeTensors
{
    public const long MaxHeaderBytes = 100_000_000;

    private static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
    {
        ["F32"] = (ScalarType.Float32, 4),
        ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2),
        ["F64"] = (ScalarType.Float64, 8),
        ["I64"] = (ScalarType.Int64, 8),
        ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2),
        ["I8"] = (ScalarType.Int8, 1),
        ["U8"] = (ScalarType.Byte, 1),
        ["BOOL"] = (ScalarType.Bool, 1),
    };

    public static string DTypeName(ScalarType type) =>
        DTypes.FirstOrDefault(kv => kv.Value.Type == type).Key
        ?? throw new ArgumentException($"dtype {type} cannot be stored in safetensors");

    /// <summary>Write tensors (in the given order) and optional string metadata, atomically.</summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var items = tensors.Select(kv => (kv.Key, Tensor: kv.Value.detach().cpu().contiguous())).ToList();
        try
        {
            var header = new JsonObject();
            if (metadata is { Count: > 0 })
            {
                var meta = new JsonObject();
                foreach (var (k, v) in metadata) meta[k] = v;
                header["__metadata__"] = meta;
            }
            long offset = 0;
            foreach (var (name, t) in items)
            {
                long bytes = t.NumberOfElements * t.ElementSize;
                header[name] = new JsonObject
                {
                    ["dtype"] = DTypeName(t.dtype),
                    ["shape"] = new JsonArray(t.shape.Select(d => (JsonNode)d).ToArray()),
                    ["data_offsets"] = new JsonArray(offset, offset + bytes),
                };
                offset += bytes;
            }
            byte[] json = Encoding.UTF8.GetBytes(header.ToJsonString());
            int pad = (8 - json.Length % 8) % 8; // keep tensor data 8-byte aligned, padding with spaces as the spec allows
            byte[] headerBytes = new byte[json.Length + pad];
            json.CopyTo(headerBytes, 0);
            headerBytes.AsSpan(json.Length).Fill((byte)' ');
            AtomicFile.Write(path, stream =>
            {
                Span<byte> len = stackalloc byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)headerBytes.Length);
                stream.Write(len);
                stream.Write(headerBytes);
                foreach (var (_, t) in items) stream.Write(t.bytes);
            });
        }
        finally
        {
            foreach (var (_, t) in items) t.Dispose();
        }
    }

    /// <summary>Parse and validate the header; throws <see cref="CheckpointFormatException"/> naming the problem.</summary>
    public static (List<SafeTensorEntry> Entries, Dictionary<string, string> Metadata, long DataStart) ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new CheckpointFormatException(path, null, "file not found");
        using var stream = File.OpenRead(path);
        return ReadHeader(stream, path);
    }

    private static (List<SafeTensorEntry>, Dictionary<string, string>, long) ReadHeader(Stream stream, string path)
    {
        long fileLength = stream.Length;
        if (fileLength < 8) throw new CheckpointFormatException(path, null, $"file is {fileLength} bytes, too short for the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        stream.ReadExactly(lenBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLength > MaxHeaderBytes || (long)headerLength > fileLength - 8)
            throw new CheckpointFormatException(path, null, $"header claims {headerLength} bytes but the file has {fileLength - 8} after the length (truncated or corrupt)");
        byte[] json = new byte[headerLength];
        stream.ReadExactly(json);
        JsonObject header;
        try
        {
            header = JsonFile.Parse(json) as JsonObject ?? throw new CheckpointFormatException(path, null, "header is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(path, null, $"header is not valid JSON: {e.Message}", e);
        }
        long dataStart = 8 + (long)headerLength;
        long dataLength = fileLength - dataStart;
        var metadata = new Dictionary<string, string>();
        var entries = new List<SafeTensorEntry>();
        foreach (var (name, node) in header)
        {
            if (name == "__metadata__")
            {
                if (node is not JsonObject meta) throw new CheckpointFormatException(path, null, "__metadata__ must be an object of strings");
                foreach (var (k, v) in meta)
                    metadata[k] = v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s
                        : throw new CheckpointFormatException(path, null, $"__metadata__ value '{k}' is not a string");
                continue;
            }
            entries.Add(ParseEntry(path, name, node, dataLength));
        }
        // Tensors must not overlap (the spec also requires them to cover the data without holes; we only forbid overlap).
        var ordered = entries.OrderBy(e => e.Begin).ToList();
        for (int i = 1; i < ordered.Count; i++)
            if (ordered[i].Begin < ordered[i - 1].End)
                throw new CheckpointFormatException(path, ordered[i].Name, $"data_offsets overlap tensor '{ordered[i - 1].Name}'");
        return (entries, metadata, dataStart);
    }

    private static SafeTensorEntry ParseEntry(string path, string name, JsonNode? node, long dataLength)
    {
        if (node is not JsonObject obj) throw new CheckpointFormatException(path, name, "entry is not an object");
        string dtype = obj["dtype"] is JsonValue dv && dv.TryGetValue<string>(out var d) ? d
            : throw new CheckpointFormatException(path, name, "missing string field 'dtype'");
        if (!DTypes.TryGetValue(dtype, out var info))
            throw new CheckpointFormatException(path, name, $"unknown dtype '{dtype}' (supported: {string.Join(", ", DTypes.Keys)})");
        if (obj["shape"] is not JsonArray shapeNode) throw new CheckpointFormatException(path, name, "missing array field 'shape'");
        var shape = new long[shapeNode.Count];
        long numel = 1;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shapeNode[i] is not JsonValue sv || !sv.TryGetValue<long>(out shape[i]) || shape[i] < 0)
                throw new CheckpointFormatException(path, name, $"shape[{i}] is not a non-negative integer");
            try { numel = checked(numel * shape[i]); }
            catch (OverflowException) { throw new CheckpointFormatException(path, name, $"shape [{string.Join(", ", shapeNode)}] has more elements than fit 64 bits"); }
        }
        if (obj["data_offsets"] is not JsonArray off || off.Count != 2
            || off[0] is not JsonValue b0 || !b0.TryGetValue<long>(out long begin)
            || off[1] is not JsonValue e0 || !e0.TryGetValue<long>(out long end))
            throw new CheckpointFormatException(path, name, "data_offsets must be [begin, end] integers");
        if (begin < 0 || end < begin || end > dataLength)
            throw new CheckpointFormatException(path, name, $"data_offsets [{begin}, {end}] fall outside the {dataLength} data bytes (truncated or corrupt)");
        // Checked: a shape of 2^62 elements would otherwise wrap to a byte count that matches empty data_offsets.
        long expected;
        try { expected = checked(numel * info.Size); }
        catch (OverflowException) { throw new CheckpointFormatException(path, name, $"shape [{string.Join(", ", shape)}] of {dtype} needs more bytes than fit 64 bits"); }
        if (end - begin != expected)
            throw new CheckpointFormatException(path, name, $"header says {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtype} needs {expected}");
        return new SafeTensorEntry(name, dtype, shape, begin, end);
    }

    /// <summary>Load every tensor (on the CPU). Either all load or an exception is thrown and none is returned.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new CheckpointFormatException(path, null, "file not found");
        using var stream = File.OpenRead(path);
        var (entries, _, dataStart) = ReadHeader(stream, path);
        var result = new Dictionary<string, Tensor>();
        try
        {
            foreach (var e in entries)
            {
                var t = empty(e.Shape, DTypes[e.DType].Type);
                result[e.Name] = t;
                stream.Position = dataStart + e.Begin;
                stream.ReadExactly(t.bytes);
            }
            return result;
        }
        catch (Exception ex) when (ex is IOException or EndOfStreamException)
        {
            foreach (var t in result.Values) t.Dispose();
            throw new CheckpointFormatException(path, null, $"could not read tensor data: {ex.Message}", ex);
        }
    }
}
