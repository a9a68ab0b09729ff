namespace RlhfGym.Env.Common;

/// <summary>
/// SplitMix64: a tiny PRNG whose sequence is fixed by this code alone (System.Random's may change between .NET
/// versions), so a world built from a seed is byte-identical anywhere.
/// </summary>
public sealed class SeededRandom
{
    private ulong _state;

    public SeededRandom(long seed) => _state = (ulong)seed ^ 0x9E3779B97F4A7C15UL;

    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [0, 1) with 53 bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    public double Uniform(double low, double high) => low + (high - low) * NextDouble();

    /// <summary>Uniform integer in [0, n).</summary>
    public int Next(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "n must be > 0");
        return (int)(NextUInt64() % (ulong)n);
    }

    public T Pick<T>(IReadOnlyList<T> items) => items[Next(items.Count)];

    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>A child generator for an independent stream (e.g. one per prompt).</summary>
    public SeededRandom Fork() => new((long)NextUInt64());
}
