using NetMQ;

namespace RlhfGym.Transport.Security;

/// <summary>
/// CurveZMQ key pairs in files. `rlhfgym keys new` writes PREFIX.key (public) and PREFIX.key_secret (public and secret)
/// in the ZPL certificate format that czmq's zcert and pyzmq's zmq.auth use, so `zmq.auth.load_certificate` reads ours
/// and we read theirs:
/// <code>
/// metadata
/// curve
///     public-key = "40 Z85 characters"
///     secret-key = "40 Z85 characters"     (the secret file only)
/// </code>
/// Files of earlier builds, one bare Z85 key line ('#' lines are comments), are still read. The secret file is readable
/// by its owner only. Both are written to a temp name and renamed.
/// </summary>
public static class CurveKeys
{
    public const string PublicSuffix = ".key", SecretSuffix = ".key_secret";

    private static readonly System.Text.RegularExpressions.Regex ZplKeyProperty = new(@"^(public-key|secret-key)\s*=\s*(.*)$");
    private static readonly System.Text.RegularExpressions.Regex ZplOtherProperty = new(@"^[A-Za-z][\w-]*\s+=\s+""[^""]*""$");

    /// <summary>Make a fresh key pair and write it; returns the certificate (its public key is what to share).</summary>
    public static NetMQCertificate WriteNew(string prefix)
    {
        var cert = new NetMQCertificate();
        string dir = Path.GetDirectoryName(Path.GetFullPath(prefix))!;
        Directory.CreateDirectory(dir);
        WriteAtomically(prefix + SecretSuffix, Certificate("ZeroMQ CURVE **Secret** Certificate\n#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.",
            cert.PublicKeyZ85, cert.SecretKeyZ85), secret: true);
        WriteAtomically(prefix + PublicSuffix, Certificate("ZeroMQ CURVE Public Certificate\n#   Give it to the other side (the server's, or a client's for an allow-list).",
            cert.PublicKeyZ85, secretZ85: null), secret: false);
        return cert;
    }

    private static string Certificate(string title, string publicZ85, string? secretZ85) =>
        $"#   ****  Generated on {DateTime.UtcNow:yyyy-MM-dd HH:mm:ss} by rlhfgym keys new  ****\n#   {title}\n\nmetadata\ncurve\n"
        + $"    public-key = \"{publicZ85}\"\n" + (secretZ85 is null ? "" : $"    secret-key = \"{secretZ85}\"\n");

    /// <summary>A secret-key file (a ZPL certificate with secret-key, or one bare key line) → the full certificate.</summary>
    public static NetMQCertificate ReadSecret(string path) => NetMQCertificate.CreateFromSecretKey(Decode(ReadKey(path, "secret-key"), path));

    /// <summary>A Z85 public key given inline, or the path of a file holding one (a ZPL certificate or one bare line).</summary>
    public static byte[] ReadPublic(string keyOrPath) =>
        File.Exists(keyOrPath) ? Decode(ReadKey(keyOrPath, "public-key"), keyOrPath) : Decode(keyOrPath, "the public key given");

    /// <summary>An allow-list file: one Z85 public key per line. Public certificates may be pasted in whole (`cat
    /// client.key >> allow.txt`): their public-key lines count, their section lines (metadata, curve, other
    /// name = "value" lines) are skipped. A secret key there is an error: it must never leave its owner.</summary>
    public static IReadOnlyList<byte[]> ReadAllowList(string path)
    {
        var keys = new List<byte[]>();
        foreach (var line in ReadKeyLines(path))
        {
            var property = ZplKeyProperty.Match(line);
            if (property.Success && property.Groups[1].Value == "secret-key")
                throw new InvalidDataException($"{path}: holds a secret key; an allow-list takes public keys only");
            if (property.Success) keys.Add(Decode(property.Groups[2].Value.Trim().Trim('"', '\''), path));
            else if (line is "metadata" or "curve" || ZplOtherProperty.IsMatch(line)) continue;
            else keys.Add(Decode(line, path));
        }
        return keys;
    }

    /// <summary>The named property of a ZPL certificate's curve section, or the file's one bare key line.</summary>
    private static string ReadKey(string path, string property)
    {
        var lines = ReadKeyLines(path);
        // Z85 itself uses '=' and '#', so a certificate is recognised by its property names, not by '='.
        var properties = lines.Select(l => ZplKeyProperty.Match(l)).Where(m => m.Success)
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value.Trim().Trim('"', '\''), StringComparer.Ordinal);
        if (properties.Count > 0)
            return properties.TryGetValue(property, out var value)
                ? value
                : throw new InvalidDataException($"{path}: a ZPL certificate without '{property}'" + (property == "secret-key" ? " (is this the public .key file?)" : ""));
        return lines.Single(path);
    }

    /// <summary>Z85 text (40 characters) → 32 key bytes, or an error naming where the text came from.</summary>
    public static byte[] Decode(string z85, string source)
    {
        z85 = z85.Trim();
        if (z85.Length != 40) throw new InvalidDataException($"{source}: a CurveZMQ key is 40 Z85 characters, got {z85.Length}");
        try
        {
            return NetMQCertificate.FromPublicKey(z85).PublicKey;
        }
        catch (Exception e) when (e is ArgumentException or IndexOutOfRangeException or FormatException)
        {
            throw new InvalidDataException($"{source}: not a Z85 key: {e.Message}", e);
        }
    }

    public static string Encode(byte[] key) => NetMQCertificate.FromPublicKey(key).PublicKeyZ85;

    private static List<string> ReadKeyLines(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: key file not found", path);
        return File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
    }

    private static string Single(this List<string> keys, string path) => keys.Count == 1
        ? keys[0] : throw new InvalidDataException($"{path}: expected exactly one key line, found {keys.Count}");

    private static void WriteAtomically(string path, string text, bool secret)
    {
        // A fresh, unpredictable temp name, created (never opened if it exists) with owner-only access from the start.
        string temp = $"{path}.tmp-{Guid.NewGuid():N}";
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var writer = new StreamWriter(temp, System.Text.Encoding.ASCII, options)) writer.Write(text);
        File.Move(temp, path, overwrite: true);
    }
}
