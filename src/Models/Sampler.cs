using static TorchSharp.torch;

namespace RlhfGym.Models;

/// <summary>
/// Draws next tokens from logits with temperature, top-k and top-p (nucleus) filtering and its own seeded
/// generator, so the same seed gives the same samples. Temperature 0 is greedy.
/// </summary>
public sealed class Sampler : IDisposable
{
    public double Temperature { get; }
    public int TopK { get; }
    public double TopP { get; }
    private readonly Generator _generator;

    public Sampler(long seed, double temperature = 1.0, int topK = 0, double topP = 1.0, Device? device = null)
    {
        if (temperature < 0 || double.IsNaN(temperature)) throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be >= 0");
        if (topK < 0) throw new ArgumentOutOfRangeException(nameof(topK), topK, "top_k must be >= 0 (0 disables it)");
        if (!(topP > 0 && topP <= 1)) throw new ArgumentOutOfRangeException(nameof(topP), topP, "top_p must be in (0, 1]");
        Temperature = temperature;
        TopK = topK;
        TopP = topP;
        _generator = new Generator((ulong)seed, device ?? CPU);
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
            scaled = scaled.masked_fill(scaled.lt(kth), double.NegativeInfinity);
        }
        if (TopP < 1.0)
        {
            var (sorted, order) = scaled.sort(-1, descending: true);
            var probs = nn.functional.softmax(sorted, -1);
            // Drop a token when the mass before it already reaches top_p (the first token always stays).
            var drop = (probs.cumsum(-1) - probs).ge(TopP);
            var dropInVocabOrder = zeros_like(drop).scatter(-1, order, drop);
            scaled = scaled.masked_fill(dropInVocabOrder, double.NegativeInfinity);
        }
        var p = nn.functional.softmax(scaled, -1);
        return multinomial(p, 1, false, _generator).squeeze(-1).MoveToOuterDisposeScope();
    }

    public void Dispose() => _generator.Dispose();
}
