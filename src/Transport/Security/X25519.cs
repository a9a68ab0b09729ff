namespace RlhfGym.Transport.Security;

/// <summary>
/// The X25519 function of RFC 7748 (§5), from NaCl.Net (already in the dependency graph: NetMQ's CURVE uses it), a
/// constant-time implementation. CurveZMQ keys are X25519 keys, so a client proves it holds the secret half of an
/// allowed public key by a Diffie-Hellman with the server's key (see <see cref="CurveAuth"/>).
/// </summary>
public static class X25519
{
    /// <summary>The base point u = 9: X25519(secret, BasePoint) is the public key.</summary>
    public static readonly byte[] BasePoint = [9, .. new byte[31]];

    public static byte[] PublicKey(ReadOnlySpan<byte> secretKey) => Multiply(secretKey, BasePoint);

    /// <summary>X25519(k, u): 32-byte little-endian scalar and u-coordinate in, 32-byte u-coordinate out (the scalar is
    /// clamped and the u-coordinate's top bit ignored, as RFC 7748 says).</summary>
    public static byte[] Multiply(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> u)
    {
        if (scalar.Length != 32) throw new ArgumentException($"an X25519 scalar is 32 bytes, got {scalar.Length}", nameof(scalar));
        if (u.Length != 32) throw new ArgumentException($"an X25519 u-coordinate is 32 bytes, got {u.Length}", nameof(u));
        var result = new byte[32];
        NaCl.Curve25519.ScalarMultiplication(result, scalar, u);
        return result;
    }
}
