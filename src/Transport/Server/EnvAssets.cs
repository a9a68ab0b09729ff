using System.Security.Cryptography;
using RlhfGym.Env.Bundles;
using RlhfGym.Models.HuggingFace;
using RlhfGym.Models.Tokenization;

namespace RlhfGym.Transport.Server;

/// <summary>
/// What a remote agent needs to start from an env (docs/protocol.md, "Assets"): its reference (SFT) model as a complete
/// Hugging Face model folder, tokenizer included (exported once per bundle per server process into a temp folder), and
/// a word tokenizer in RlhfGym's own JSON too, so a Python agent can decode text and initialise its policy from the
/// env's SFT model. Dispose deletes the exports.
/// </summary>
public sealed class EnvAssets : IDisposable
{
    /// <summary>One downloadable file: its wire name, where it is on the server, its size and SHA-256 (hex).</summary>
    public sealed record Asset(string Name, string Path, long Size, string Sha256);

    private readonly Dictionary<string, IReadOnlyList<Asset>> _byBundle = new();
    private readonly List<string> _exports = new();

    public IReadOnlyList<Asset> For(string bundleDirectory)
    {
        string key = Path.GetFullPath(bundleDirectory);
        if (_byBundle.TryGetValue(key, out var known)) return known;
        var files = new List<(string Name, string Path)>();
        var bundle = EnvBundle.Load(key);
        // The word tokenizer in RlhfGym's JSON as well, under its own name (the Hugging Face one is in reference/).
        if (bundle.Tokenizer is WordTokenizer) files.Add((WordTokenizer.FileName, WordTokenizer.PathIn(key)));
        string export = Path.Combine(Path.GetTempPath(), "rlhfgym-assets", Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key)))[..16], Environment.ProcessId.ToString());
        string reference = Path.Combine(export, "reference");
        _exports.Add(export);
        if (!Directory.Exists(reference))
            HfExport.Export(Path.Combine(key, EnvBundle.ReferenceDir), reference, new HfTokenIds(Pad: bundle.PadId, Eos: bundle.EosIds), overwrite: true,
                bundle.WriteHfTokenizer);
        files.AddRange(Directory.GetFiles(reference).Order(StringComparer.Ordinal).Select(f => ($"reference/{Path.GetFileName(f)}", f)));
        var assets = files.OrderBy(f => f.Name, StringComparer.Ordinal).Select(f =>
        {
            using var stream = File.OpenRead(f.Path);
            return new Asset(f.Name, f.Path, stream.Length, Convert.ToHexString(SHA256.HashData(stream)).ToLowerInvariant());
        }).ToList();
        _byBundle[key] = assets;
        return assets;
    }

    public void Dispose()
    {
        foreach (var export in _exports)
        {
            try { Directory.Delete(export, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
        _exports.Clear();
        _byBundle.Clear();
    }

    /// <summary>Bytes [offset, offset + length) of one asset; the last chunk may be shorter.</summary>
    public static byte[] Read(Asset asset, long offset, int length)
    {
        if (offset < 0 || offset > asset.Size) throw new ArgumentOutOfRangeException(nameof(offset), offset, $"offset must be in 0..{asset.Size} for asset '{asset.Name}'");
        if (length < 1) throw new ArgumentOutOfRangeException(nameof(length), length, "length must be >= 1");
        int count = (int)Math.Min(length, asset.Size - offset);
        var data = new byte[count];
        using var stream = File.OpenRead(asset.Path);
        stream.Seek(offset, SeekOrigin.Begin);
        stream.ReadExactly(data);
        return data;
    }
}
