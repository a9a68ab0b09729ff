using System.Numerics;

namespace RlhfGym.Transport.Security;

/// <summary>
/// The X25519 function of RFC 7748 (§5), written from the RFC's Montgomery-ladder description. CurveZMQ keys are
/// X25519 keys, so a client can prove it holds the secret half of an allowed public key by a Diffie-Hellman with the
/// server's key (see <see cref="CurveAuth"/>). It runs once per session, so clarity beats speed here: BigInteger
/// arithmetic, about a millisecond a call.
/// </summary>
public static class X25519
{
    private static readonly BigInteger P = BigInteger.Pow(2, 255) - 19;
    private static readonly BigInteger A24 = 121665;

    /// <summary>The base point u = 9: X25519(secret, BasePoint) is the public key.</summary>
    public static readonly byte[] BasePoint = [9, .. new byte[31]];

    public static byte[] PublicKey(ReadOnlySpan<byte> secretKey) => Multiply(secretKey, BasePoint);

    /// <summary>X25519(k, u): 32-byte little-endian scalar and u-coordinate in, 32-byte u-coordinate out.</summary>
    public static byte[] Multiply(ReadOnlySpan<byte> scalar, ReadOnlySpan<byte> u)
    {
        if (scalar.Length != 32) throw new ArgumentException($"an X25519 scalar is 32 bytes, got {scalar.Length}", nameof(scalar));
        if (u.Length != 32) throw new ArgumentException($"an X25519 u-coordinate is 32 bytes, got {u.Length}", nameof(u));
        // Clamp the scalar (RFC 7748 decodeScalar25519) and drop the u-coordinate's top bit (decodeUCoordinate).
        Span<byte> k = stackalloc byte[32];
        scalar.CopyTo(k);
        k[0] &= 248;
        k[31] &= 127;
        k[31] |= 64;
        Span<byte> uBytes = stackalloc byte[32];
        u.CopyTo(uBytes);
        uBytes[31] &= 127;
        var x1 = new BigInteger(uBytes, isUnsigned: true, isBigEndian: false) % P;
        var kInt = new BigInteger(k, isUnsigned: true, isBigEndian: false);

        BigInteger x2 = 1, z2 = 0, x3 = x1, z3 = 1;
        int swap = 0;
        for (int t = 254; t >= 0; t--)
        {
            int kt = (int)((kInt >> t) & 1);
            swap ^= kt;
            if (swap == 1) { (x2, x3) = (x3, x2); (z2, z3) = (z3, z2); }
            swap = kt;
            var a = (x2 + z2) % P;
            var aa = a * a % P;
            var b = Mod(x2 - z2);
            var bb = b * b % P;
            var e = Mod(aa - bb);
            var c = (x3 + z3) % P;
            var d = Mod(x3 - z3);
            var da = d * a % P;
            var cb = c * b % P;
            x3 = BigInteger.Pow(da + cb, 2) % P;
            z3 = x1 * BigInteger.Pow(Mod(da - cb), 2) % P;
            x2 = aa * bb % P;
            z2 = e * ((aa + A24 * e) % P) % P;
        }
        if (swap == 1) { (x2, x3) = (x3, x2); (z2, z3) = (z3, z2); }
        var result = x2 * BigInteger.ModPow(z2, P - 2, P) % P;
        var bytes = new byte[32];
        result.TryWriteBytes(bytes, out _, isUnsigned: true, isBigEndian: false);
        return bytes;
    }

    private static BigInteger Mod(BigInteger v)
    {
        var r = v % P;
        return r.Sign < 0 ? r + P : r;
    }
}
