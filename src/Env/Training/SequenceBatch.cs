using static TorchSharp.torch;

namespace RlhfGym.Env.Training;

/// <summary>
/// Prompt + response pairs packed right-padded into one (B, T) tensor, with each row's length and where its
/// response starts. Training code reads logits at t to predict token t+1, so response targets are t+1 in
/// [PromptLength, Length).
/// </summary>
public sealed class SequenceBatch : IDisposable
{
    public Tensor Tokens { get; }          // (B, T) int64
    public long[] Lengths { get; }
    public int[] PromptLengths { get; }
    public int Width { get; }

    public SequenceBatch(IReadOnlyList<(int[] Prompt, int[] Response)> rows, int padId, Device device)
    {
        Width = rows.Max(r => r.Prompt.Length + r.Response.Length);
        Lengths = new long[rows.Count];
        PromptLengths = new int[rows.Count];
        var data = new long[rows.Count * Width];
        Array.Fill(data, padId);
        for (int b = 0; b < rows.Count; b++)
        {
            var (prompt, response) = rows[b];
            for (int t = 0; t < prompt.Length; t++) data[b * Width + t] = prompt[t];
            for (int t = 0; t < response.Length; t++) data[b * Width + prompt.Length + t] = response[t];
            PromptLengths[b] = prompt.Length;
            Lengths[b] = prompt.Length + response.Length;
        }
        Tokens = tensor(data, [rows.Count, Width], ScalarType.Int64, device);
    }

    /// <summary>(B, T-1) float mask: 1 where position t's next token (t+1) is a response token.</summary>
    public Tensor ResponseTargetMask()
    {
        var mask = new float[Lengths.Length * (Width - 1)];
        for (int b = 0; b < Lengths.Length; b++)
            for (int t = PromptLengths[b] - 1; t < Lengths[b] - 1; t++)
                mask[b * (Width - 1) + t] = 1f;
        return tensor(mask, [Lengths.Length, Width - 1], ScalarType.Float32, Tokens.device);
    }

    public void Dispose() => Tokens.Dispose();
}
