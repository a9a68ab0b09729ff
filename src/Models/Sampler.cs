using static TorchSharp.torch;

namespace RlhfGym.Models;

/// <summary>
/// Draws next tokens from logits with temperature, top-k and top-p (nucleus) filtering and its own seeded
/// generator, so the same seed gives the same samples. Temperature 0 is greedy.
/// <para>
/// TorchSharp (0.107) makes only CPU generators, and libtorch's multinomial refuses a CPU generator for a CUDA
/// tensor. Off the CPU the sampler therefore draws one uniform per row on the host and inverts each row's CDF on the
/// device: B numbers cross to the device, not B×V probabilities. Both ways sample the same distribution; for the same
/// seed they draw different tokens, so a seed's samples depend on the device.
/// </para>
/// </summary>
public sealed class Sampler : IDisposable
{
    public double Temperature { get; }
    public int TopK { get; }
    public double TopP { get; }
    private readonly Generator _generator;
    private readonly bool _invertCdf;

    public Sampler(long seed, double temperature = 1.0, int topK = 0, double topP = 1.0, Device? device = null)
        : this(seed, temperature, topK, topP, device, invertCdf: device is not null && device.type != TorchSharp.DeviceType.CPU)
    {
    }

    /// <summary>invertCdf: sample by inverting each row's CDF with host uniforms, the way taken off the CPU, on any device.</summary>
    public Sampler(long seed, double temperature, int topK, double topP, Device? device, bool invertCdf)
    {
        if (temperature < 0 || double.IsNaN(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be >= 0");
        if (topK < 0) throw new ArgumentOutOfRangeException(nameof(topK), topK, "top_k must be >= 0 (0 disables it)");
        if (!(topP > 0 && topP <= 1)) throw new ArgumentOutOfRangeException(nameof(topP), topP, "top_p must be in (0, 1]");
        Temperature = temperature;
        TopK = topK;
        TopP = topP;
        _generator = new Generator((ulong)seed, CPU);
        _invertCdf = invertCdf;
    }

    /// <summary>logits (B, V) → token ids (B) int64.</summary>
    public Tensor Sample(Tensor logits)
    {
        using var scope = NewDisposeScope();
        if (Temperature == 0) return logits.argmax(-1).MoveToOuterDisposeScope();
        var scaled = logits.to_type(ScalarType.Float32) / Temperature;
        if (TopK > 0 && TopK < scaled.shape[^1])
        {
            var kth = scaled.topk(TopK, dim: -1).values.narrow(-1, TopK - 1, 1);
            scaled = scaled.masked_fill(scaled.lt(kth), HeldScalars.NegativeInfinity);
        }
        if (TopP < 1.0)
        {
            var (sorted, order) = scaled.sort(-1, descending: true);
            var probs = nn.functional.softmax(sorted, -1);
            // Drop a token when the mass before it already reaches top_p (the first token always stays).
            var drop = (probs.cumsum(-1) - probs).ge(TopP);
            var dropInVocabOrder = zeros_like(drop).scatter(-1, order, drop);
            scaled = scaled.masked_fill(dropInVocabOrder, HeldScalars.NegativeInfinity);
        }
        var p = nn.functional.softmax(scaled, -1);
        if (!_invertCdf) return multinomial(p, 1, false, _generator).squeeze(-1).MoveToOuterDisposeScope();
        // The first token whose cumulative mass exceeds u·total: a token of zero mass never is (its CDF equals its
        // predecessor's), and u = 0 picks the first token with mass.
        var cdf = p.cumsum(-1);
        var u = rand([p.shape[0], 1], generator: _generator, dtype: ScalarType.Float32).to(p.device);
        var picked = searchsorted(cdf, u * cdf.narrow(-1, cdf.shape[^1] - 1, 1), right: true);
        return picked.clamp_max(p.shape[^1] - 1).squeeze(-1).MoveToOuterDisposeScope();
    }

    public void Dispose() => _generator.Dispose();
}
