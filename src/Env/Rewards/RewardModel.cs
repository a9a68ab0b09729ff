using RlhfGym.Env.Training;
using RlhfGym.Models.Checkpoints;
using RlhfGym.Models.Transformer;
using TorchSharp;
using static TorchSharp.torch;

namespace RlhfGym.Env.Rewards;

/// <summary>
/// A reward model: the causal transformer with a scalar head (method.md §2). Causal, so the value at position b
/// sees only x and y_≤b. Saved as one model directory whose safetensors also hold "score.weight".
/// </summary>
public sealed class RewardModel : IDisposable
{
    public CausalTransformer Transformer { get; }
    public ScalarHead Head { get; }

    public RewardModel(CausalTransformer transformer, ScalarHead head)
    {
        Transformer = transformer;
        Head = head;
    }

    /// <summary>Initialised from an SFT checkpoint with a fresh head drawn from the current torch seed.</summary>
    public static RewardModel FromSft(string sftDir, Device device)
    {
        var (transformer, _) = ModelCheckpoint.Load(sftDir, device);
        return new RewardModel(transformer, new ScalarHead(transformer.Config.DModel, device));
    }

    public static RewardModel Load(string dir, Device device)
    {
        var (transformer, head) = ModelCheckpoint.Load(dir, device, withHead: true);
        return new RewardModel(transformer, head!);
    }

    public void Save(string dir, IReadOnlyDictionary<string, string>? metadata = null) => ModelCheckpoint.Save(dir, Transformer, Head, metadata);

    public IEnumerable<TorchSharp.Modules.Parameter> Parameters() => Transformer.parameters().Concat(Head.parameters());

    public void Train(bool on)
    {
        Transformer.train(on);
        Head.train(on);
    }

    /// <summary>Scalar value at every position of a right-padded batch: (B, T).</summary>
    public Tensor Values(SequenceBatch batch) => Head.forward(Transformer.Forward(batch.Tokens, batch.Lengths));

    public Dictionary<string, Tensor> StateCopy()
    {
        var copy = new Dictionary<string, Tensor>();
        foreach (var (k, v) in Transformer.state_dict()) copy["t." + k] = v.detach().clone();
        foreach (var (k, v) in Head.state_dict()) copy["h." + k] = v.detach().clone();
        return copy;
    }

    public void Restore(Dictionary<string, Tensor> state)
    {
        using var _ = no_grad();
        foreach (var (k, v) in Transformer.state_dict()) v.copy_(state["t." + k]);
        foreach (var (k, v) in Head.state_dict()) v.copy_(state["h." + k]);
    }

    public void Dispose()
    {
        Transformer.Dispose();
        Head.Dispose();
    }
}
