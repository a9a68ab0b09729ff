using NetMQ;

namespace RlhfGym.Transport.Security;

/// <summary>What a client needs to talk to a CurveZMQ server: the server's public key and its own key pair. The proof
/// for the server's allow-list is computed once here.</summary>
public sealed class CurveClientKeys
{
    public byte[] ServerPublicKey { get; }
    public NetMQCertificate Client { get; }
    public string ClientKeyZ85 => Client.PublicKeyZ85;
    public byte[] Proof { get; }

    public CurveClientKeys(byte[] serverPublicKey, NetMQCertificate client)
    {
        if (serverPublicKey.Length != 32) throw new ArgumentException($"a CurveZMQ server key is 32 bytes, got {serverPublicKey.Length}", nameof(serverPublicKey));
        ServerPublicKey = serverPublicKey;
        Client = client;
        Proof = CurveAuth.Proof(client.SecretKey ?? throw new ArgumentException("the client certificate has no secret key", nameof(client)), serverPublicKey);
    }

    /// <param name="serverKey">The server's public key, inline (Z85) or a PREFIX.key file.</param>
    /// <param name="clientSecretKeyFile">The client's PREFIX.key_secret file.</param>
    public static CurveClientKeys FromFiles(string serverKey, string clientSecretKeyFile) =>
        new(CurveKeys.ReadPublic(serverKey), CurveKeys.ReadSecret(clientSecretKeyFile));
}
