namespace RlhfGym.Env.Options;

/// <summary>
/// An env option with an unknown key or a value it does not accept. <see cref="Key"/> names the option as the wire,
/// env.json and docs/env.md spell it, so a server can answer <c>invalid_argument</c> naming it and a CLI can print it.
/// </summary>
public sealed class EnvOptionException : ArgumentException
{
    public EnvOptionException(string key, string message, Exception? inner = null) : base(message, inner) => Key = key;

    /// <summary>The option's key (snake_case, e.g. <c>dense_as_bandit</c>).</summary>
    public string Key { get; }
}
