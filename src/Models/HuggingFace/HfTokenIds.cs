namespace RlhfGym.Models.HuggingFace;

/// <summary>The special token ids a saved config.json carries (pad_token_id, bos_token_id, eos_token_id).</summary>
public sealed record HfTokenIds(int? Pad = null, int? Bos = null, IReadOnlyList<int>? Eos = null)
{
    public void Validate(int vocabSize)
    {
        void Check(int? id, string name)
        {
            if (id is { } v && (v < 0 || v >= vocabSize))
                throw new ArgumentOutOfRangeException(name, v, $"{name} must be in 0..{vocabSize - 1} (the model's vocabulary)");
        }
        Check(Pad, "pad_token_id");
        Check(Bos, "bos_token_id");
        foreach (var e in Eos ?? []) Check(e, "eos_token_id");
    }
}
