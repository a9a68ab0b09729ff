using System.CommandLine;
using System.Text.Json.Nodes;
using RlhfGym.Transport.Security;

namespace RlhfGym.Cli.Commands;

/// <summary>`rlhfgym keys new`: a CurveZMQ key pair for `serve` (server) or a remote client (docs/protocol.md).</summary>
public static class KeysCommand
{
    public static Command Create()
    {
        var outPrefix = new Option<string>("--out") { Description = "file prefix: writes PREFIX.key (public) and PREFIX.key_secret (secret, mode 600)", Required = true };
        var force = new Option<bool>("--force") { Description = "overwrite an existing key pair" };
        var create = new Command("new", "make a CurveZMQ key pair") { outPrefix, force };
        VerbRunner.Set(create, (parse, progress) =>
        {
            string prefix = parse.GetValue(outPrefix)!;
            if (!parse.GetValue(force) && (File.Exists(prefix + CurveKeys.SecretSuffix) || File.Exists(prefix + CurveKeys.PublicSuffix)))
                throw new IOException($"{prefix}{CurveKeys.SecretSuffix}: a key pair is already there (use --force to replace it)");
            var cert = CurveKeys.WriteNew(prefix);
            return new JsonObject
            {
                ["public_key"] = cert.PublicKeyZ85,
                ["public_key_file"] = Path.GetFullPath(prefix + CurveKeys.PublicSuffix),
                ["secret_key_file"] = Path.GetFullPath(prefix + CurveKeys.SecretSuffix),
            };
        });
        return new Command("keys", "CurveZMQ keys for authenticated, encrypted remote envs") { create };
    }
}
