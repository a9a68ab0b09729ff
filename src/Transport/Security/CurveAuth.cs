using System.Security.Cryptography;
using System.Text;

namespace RlhfGym.Transport.Security;

/// <summary>
/// The allow-list check of docs/protocol.md ("Authentication"). CurveZMQ encrypts the connection and proves the
/// server's identity, but NetMQ 4.0.4 has no ZAP hook to filter clients by their CURVE key. So a client proves it holds
/// an allowed key in the protocol itself: "hello" and "make" carry its public key and
/// proof = HMAC-SHA256(X25519(client secret, server public), "rlhfgym-curve-auth-v1" ‖ client public ‖ server public).
/// Only the holder of the client's secret key (or the server's) can compute it, and the CURVE channel keeps it from
/// eavesdroppers. The server keeps only public keys.
/// </summary>
public sealed class CurveAuth
{
    private static readonly byte[] Context = Encoding.ASCII.GetBytes("rlhfgym-curve-auth-v1");

    private readonly byte[] _serverSecret, _serverPublic;
    private readonly HashSet<string> _allowed;
    private readonly Dictionary<string, byte[]> _expectedProofs = new(); // per allowed client key, computed once

    public CurveAuth(byte[] serverSecret, IEnumerable<byte[]> allowedClientKeys)
    {
        _serverSecret = serverSecret;
        _serverPublic = X25519.PublicKey(serverSecret);
        _allowed = allowedClientKeys.Select(Convert.ToHexString).ToHashSet();
    }

    public int AllowedCount => _allowed.Count;

    public static byte[] Proof(byte[] clientSecret, byte[] serverPublic)
    {
        var clientPublic = X25519.PublicKey(clientSecret);
        var shared = X25519.Multiply(clientSecret, serverPublic);
        if (IsZero(shared)) throw new ArgumentException("the server key is a low-order point (the shared secret is zero)", nameof(serverPublic));
        return Mac(shared, clientPublic, serverPublic);
    }

    // A low-order public key gives an all-zero shared secret that anyone can compute (RFC 7748 §6.1): refuse it.
    private static bool IsZero(byte[] shared) => shared.All(b => b == 0);

    /// <summary>Null when the client may be served, else why not (for the error reply).</summary>
    public string? Check(string? clientKeyZ85, byte[]? proof)
    {
        if (clientKeyZ85 is null || proof is null)
            return "this server only serves allowed CurveZMQ keys: send 'client_key' and 'proof' (docs/protocol.md, Authentication)";
        byte[] clientPublic;
        try { clientPublic = CurveKeys.Decode(clientKeyZ85, "client_key"); }
        catch (InvalidDataException e) { return e.Message; }
        string hex = Convert.ToHexString(clientPublic);
        if (!_allowed.Contains(hex)) return $"client key {clientKeyZ85} is not on this server's allow-list";
        if (!_expectedProofs.TryGetValue(hex, out var expected))
        {
            var shared = X25519.Multiply(_serverSecret, clientPublic);
            if (IsZero(shared)) return $"client key {clientKeyZ85} is a low-order point and cannot be proven";
            _expectedProofs[hex] = expected = Mac(shared, clientPublic, _serverPublic);
        }
        return CryptographicOperations.FixedTimeEquals(expected, proof) ? null : $"the proof for client key {clientKeyZ85} is wrong (does the client hold its secret key?)";
    }

    private static byte[] Mac(byte[] sharedSecret, byte[] clientPublic, byte[] serverPublic) =>
        HMACSHA256.HashData(sharedSecret, (byte[])[.. Context, .. clientPublic, .. serverPublic]);
}
