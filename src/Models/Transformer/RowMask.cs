using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace RlhfGym.Models.Transformer;

/// <summary>
/// Which rows of a batch take part in a decode step, when not all do: rows of a KV-cache pool shared by several envs,
/// of which only some sent a step. Kept on the host (for the cache's lengths) and on the device (a 0/1 int64 vector
/// the positions advance by, and the rows' indices); <see cref="Update"/> refreshes both in buffers made once, so a masked
/// step allocates no new storage.
/// </summary>
public sealed class RowMask : IDisposable
{
    public int Size { get; }
    internal bool[] Host { get; }
    internal Tensor Steps { get; }  // (Size) int64: 1 where the row takes part
    private readonly long[] _steps, _rows;
    private int _count;
    private readonly Tensor _stepsCpu, _rowsCpu;
    private readonly Tensor _rowsStore; // (Size) int64 on the device: the taking-part rows' indices first
    private Tensor? _index;             // a view of the first entries of _rowsStore: the rows taking part

    public RowMask(int size, Device device)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "must be > 0");
        Size = size;
        Host = new bool[size];
        _steps = new long[size];
        _rows = new long[size];
        bool cpu = device.type == TorchSharp.DeviceType.CPU;
        _stepsCpu = zeros(size, ScalarType.Int64).DetachFromDisposeScope();
        _rowsCpu = zeros(size, ScalarType.Int64).DetachFromDisposeScope();
        Steps = (cpu ? _stepsCpu : zeros(size, ScalarType.Int64, device)).DetachFromDisposeScope();
        _rowsStore = (cpu ? _rowsCpu : zeros(size, ScalarType.Int64, device)).DetachFromDisposeScope();
    }

    /// <summary>The rows taking part, by index (their outputs are read back through it).</summary>
    public Tensor Index => _index ?? throw new InvalidOperationException("call Update first");

    /// <summary>The same indices on the host, in the same order.</summary>
    public ReadOnlySpan<long> HostIndex => _rows.AsSpan(0, _count);

    /// <summary>Take part: row b when <paramref name="rows"/>[b].</summary>
    public void Update(ReadOnlySpan<bool> rows)
    {
        if (rows.Length != Size) throw new ArgumentException($"expected {Size} rows, got {rows.Length}", nameof(rows));
        int count = 0;
        for (int b = 0; b < Size; b++)
        {
            Host[b] = rows[b];
            _steps[b] = rows[b] ? 1 : 0;
            if (rows[b]) _rows[count++] = b;
        }
        MemoryMarshal.AsBytes(_steps.AsSpan()).CopyTo(_stepsCpu.bytes);
        _count = count;
        MemoryMarshal.AsBytes(_rows.AsSpan(0, count)).CopyTo(_rowsCpu.bytes);
        if (!ReferenceEquals(Steps, _stepsCpu)) Steps.copy_(_stepsCpu);
        if (!ReferenceEquals(_rowsStore, _rowsCpu)) _rowsStore.copy_(_rowsCpu);
        _index?.Dispose();
        _index = _rowsStore.narrow(0, 0, count).DetachFromDisposeScope();
    }

    public void Dispose()
    {
        _index?.Dispose();
        if (!ReferenceEquals(Steps, _stepsCpu)) Steps.Dispose();
        if (!ReferenceEquals(_rowsStore, _rowsCpu)) _rowsStore.Dispose();
        _stepsCpu.Dispose();
        _rowsCpu.Dispose();
    }
}
