using NetMQ;

namespace RlhfGym.Transport.Security;

/// <summary>
/// CurveZMQ key pairs in files, as `rlhfgym keys new` writes them: PREFIX.key holds the public key and
/// PREFIX.key_secret the secret key, each as 40 Z85 characters on one line ('#' lines are comments). The secret file
/// is readable by its owner only. Both are written to a temp name and renamed.
/// </summary>
public static class CurveKeys
{
    public const string PublicSuffix = ".key", SecretSuffix = ".key_secret";

    /// <summary>Make a fresh key pair and write it; returns the certificate (its public key is what to share).</summary>
    public static NetMQCertificate WriteNew(string prefix)
    {
        var cert = new NetMQCertificate();
        string dir = Path.GetDirectoryName(Path.GetFullPath(prefix))!;
        Directory.CreateDirectory(dir);
        WriteAtomically(prefix + SecretSuffix, $"# CurveZMQ secret key: keep it private\n{cert.SecretKeyZ85}\n", secret: true);
        WriteAtomically(prefix + PublicSuffix, $"# CurveZMQ public key: give it to the other side\n{cert.PublicKeyZ85}\n", secret: false);
        return cert;
    }

    /// <summary>A secret-key file → the full certificate (public key derived from it).</summary>
    public static NetMQCertificate ReadSecret(string path) => NetMQCertificate.CreateFromSecretKey(Decode(ReadKeyLines(path).Single(path), path));

    /// <summary>A Z85 public key given inline, or the path of a file holding one.</summary>
    public static byte[] ReadPublic(string keyOrPath) =>
        File.Exists(keyOrPath) ? Decode(ReadKeyLines(keyOrPath).Single(keyOrPath), keyOrPath) : Decode(keyOrPath, "the public key given");

    /// <summary>An allow-list file: one Z85 public key per line.</summary>
    public static IReadOnlyList<byte[]> ReadAllowList(string path) => ReadKeyLines(path).Select(k => Decode(k, path)).ToList();

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
