using RlhfGym.Env.Bundles;
using static TorchSharp.torch;

namespace RlhfGym.Env.Core;

/// <summary>
/// The decoders a server's envs share: one per bundle directory, cache capacity and device, so that sessions on the same
/// bundle with the same max_new_tokens step through one model copy and one KV-cache pool
/// (<see cref="TextVectorEnv.StepTogether"/>). A decoder no env uses any more is let go the next time one is asked for.
/// Not thread-safe: the server handles one request at a time.
/// </summary>
public sealed class EnvDecoders : IDisposable
{
    private readonly Dictionary<string, EnvDecoder> _byKey = new();

    /// <summary>Decoders held now (in use or not yet let go).</summary>
    public int Count => _byKey.Count;

    public EnvDecoder For(EnvBundle bundle, int capacity, Device device)
    {
        string key = $"{Path.GetFullPath(bundle.Directory)}|{capacity}|{device}";
        foreach (var (idleKey, idle) in _byKey.Where(kv => kv.Value.RowsInUse == 0 && kv.Key != key).ToList())
        {
            idle.Dispose();
            _byKey.Remove(idleKey);
        }
        if (!_byKey.TryGetValue(key, out var decoder)) _byKey[key] = decoder = new EnvDecoder(bundle, capacity, device);
        return decoder;
    }

    public void Dispose()
    {
        foreach (var decoder in _byKey.Values) decoder.Dispose();
        _byKey.Clear();
    }
}
