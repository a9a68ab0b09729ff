using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Which rows of a batch take part in a decode step, when not all do: rows of a KV-cache pool shared by several envs,
/// of which only some sent a step. Kept on the host (for the cache's lengths) and on the device (a 0/1 int64 vector
/// the positions advance by, and the rows' indices); <see cref="Update"/> refreshes both in place of the old values.
/// </summary>
public sealed class RowMask : IDisposable
{
    public int Size { get; }
    internal bool[] Host { get; }
    internal Tensor Steps { get; }  // (Size) int64: 1 where the row takes part
    private readonly long[] _steps;
    private readonly Tensor _stepsCpu;
    private Tensor? _index;         // (taking part) int64: the rows' indices, for selecting their outputs

    public RowMask(int size, Device device)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "must be > 0");
        Size = size;
        Host = new bool[size];
        _steps = new long[size];
        _stepsCpu = zeros(size, ScalarType.Int64).DetachFromDisposeScope();
        Steps = (device.type == TorchSharp.DeviceType.CPU ? _stepsCpu : zeros(size, ScalarType.Int64, device)).DetachFromDisposeScope();
    }

    /// <summary>The rows taking part, by index (their outputs are read back through it).</summary>
    public Tensor Index => _index ?? throw new InvalidOperationException("call Update first");

    /// <summary>Take part: row b when <paramref name="rows"/>[b].</summary>
    public void Update(ReadOnlySpan<bool> rows)
    {
        if (rows.Length != Size) throw new ArgumentException($"expected {Size} rows, got {rows.Length}", nameof(rows));
        int count = 0;
        for (int b = 0; b < Size; b++)
        {
            Host[b] = rows[b];
            _steps[b] = rows[b] ? 1 : 0;
            count += rows[b] ? 1 : 0;
        }
        var index = new long[count];
        for (int b = 0, i = 0; b < Size; b++)
            if (rows[b]) index[i++] = b;
        MemoryMarshal.AsBytes(_steps.AsSpan()).CopyTo(_stepsCpu.bytes);
        if (!ReferenceEquals(Steps, _stepsCpu)) Steps.copy_(_stepsCpu);
        _index?.Dispose();
        _index = tensor(index, ScalarType.Int64, Steps.device).DetachFromDisposeScope();
    }

    public void Dispose()
    {
        _index?.Dispose();
        if (!ReferenceEquals(Steps, _stepsCpu)) Steps.Dispose();
        _stepsCpu.Dispose();
    }
}
