using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Security;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Tests;

public class CurveTests
{
    [Fact]
    public void X25519_matches_the_rfc_7748_test_vectors()
    {
        // RFC 7748 §5.2, first vector.
        Assert.Equal("C3DA55379DE9C6908E94EA4DF28D084F32ECCF03491C71F754B4075577A28552", Convert.ToHexString(X25519.Multiply(
            Convert.FromHexString("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
            Convert.FromHexString("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))));
        // RFC 7748 §6.1: Alice's and Bob's public keys and their shared secret.
        var alice = Convert.FromHexString("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
        var bob = Convert.FromHexString("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
        Assert.Equal("8520F0098930A754748B7DDCB43EF75A0DBF3A0D26381AF4EBA4A98EAA9B4E6A", Convert.ToHexString(X25519.PublicKey(alice)));
        Assert.Equal("DE9EDB7D7B7DC1B4D35B61C2ECE435373F8343C85B78674DADFC7E146F882B4F", Convert.ToHexString(X25519.PublicKey(bob)));
        Assert.Equal("4A5D9D5BA4CE2DE1728E3BF480350F25E07E21C947D19E3376F09B3C1E161742",
            Convert.ToHexString(X25519.Multiply(alice, X25519.PublicKey(bob))));
        Assert.Throws<ArgumentException>(() => X25519.Multiply(new byte[31], X25519.BasePoint));
    }

    [Fact]
    public void Our_public_keys_agree_with_netmqs_curve_keys()
    {
        for (int i = 0; i < 3; i++)
        {
            var cert = new NetMQCertificate();
            Assert.Equal(cert.PublicKey, X25519.PublicKey(cert.SecretKey!));
        }
    }

    [Fact]
    public void Key_files_round_trip_and_bad_ones_name_the_file()
    {
        using var dir = new TempDir();
        var cert = CurveKeys.WriteNew(dir.File("server"));
        Assert.Equal(cert.PublicKey, CurveKeys.ReadSecret(dir.File("server.key_secret")).PublicKey);
        Assert.Equal(cert.PublicKey, CurveKeys.ReadPublic(dir.File("server.key")));
        Assert.Equal(cert.PublicKey, CurveKeys.ReadPublic(cert.PublicKeyZ85));
        if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.File("server.key_secret")));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*"));

        // ZPL certificates, as czmq and pyzmq write them.
        Assert.Contains($"public-key = \"{cert.PublicKeyZ85}\"", File.ReadAllText(dir.File("server.key")));
        Assert.DoesNotContain("secret-key", File.ReadAllText(dir.File("server.key")));
        Assert.Contains($"secret-key = \"{cert.SecretKeyZ85}\"", File.ReadAllText(dir.File("server.key_secret")));
        Assert.Contains("secret-key", Assert.Throws<InvalidDataException>(() => CurveKeys.ReadSecret(dir.File("server.key"))).Message);
        // An allow-list takes bare keys and whole public certificates, never a secret key.
        var other = CurveKeys.WriteNew(dir.File("other"));
        File.WriteAllText(dir.File("allow.txt"), $"# team\n{other.PublicKeyZ85}\n" + File.ReadAllText(dir.File("server.key")));
        Assert.Equal([other.PublicKey, cert.PublicKey], CurveKeys.ReadAllowList(dir.File("allow.txt")));
        File.WriteAllText(dir.File("leak.txt"), File.ReadAllText(dir.File("server.key_secret")));
        Assert.Contains("secret key", Assert.Throws<InvalidDataException>(() => CurveKeys.ReadAllowList(dir.File("leak.txt"))).Message);
        // Bare one-line files of earlier builds still read.
        File.WriteAllText(dir.File("old.key_secret"), $"# CurveZMQ secret key: keep it private\n{cert.SecretKeyZ85}\n");
        File.WriteAllText(dir.File("old.key"), $"# CurveZMQ public key\n{cert.PublicKeyZ85}\n");
        Assert.Equal(cert.PublicKey, CurveKeys.ReadSecret(dir.File("old.key_secret")).PublicKey);
        Assert.Equal(cert.PublicKey, CurveKeys.ReadPublic(dir.File("old.key")));

        File.WriteAllText(dir.File("short.key"), "abc\n");
        Assert.Contains("short.key", Assert.Throws<InvalidDataException>(() => CurveKeys.ReadPublic(dir.File("short.key"))).Message);
        File.WriteAllText(dir.File("two.key_secret"), cert.SecretKeyZ85 + "\n" + cert.SecretKeyZ85 + "\n");
        Assert.Contains("exactly one key", Assert.Throws<InvalidDataException>(() => CurveKeys.ReadSecret(dir.File("two.key_secret"))).Message);
        Assert.Contains("missing.key_secret", Assert.Throws<FileNotFoundException>(() => CurveKeys.ReadSecret(dir.File("missing.key_secret"))).Message);
    }

    [Fact]
    public async Task With_an_allow_list_only_allowed_keys_get_service()
    {
        using var dir = new TempDir();
        var server = CurveKeys.WriteNew(dir.File("server"));
        var allowed = CurveKeys.WriteNew(dir.File("allowed"));
        var stranger = CurveKeys.WriteNew(dir.File("stranger"));
        File.WriteAllText(dir.File("allow.txt"), $"# clients\n{allowed.PublicKeyZ85}\n");
        await using var running = await TestServer.Start(curveSecretKeyFile: dir.File("server.key_secret"), allowedClientKeysFile: dir.File("allow.txt"));

        // The allowed client: encrypted, proven, served.
        using (var good = new RemoteVectorEnv(running.Address, numEnvs: 2, curve: CurveClientKeys.FromFiles(dir.File("server.key"), dir.File("allowed.key_secret"))))
        {
            good.Reset(3);
            good.Step([5, 6]);
        }

        // A client with a valid CURVE key that is not on the list: refused by name, no session.
        var refused = Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv(running.Address,
            curve: CurveClientKeys.FromFiles(server.PublicKeyZ85, dir.File("stranger.key_secret")), connectTimeout: TimeSpan.FromSeconds(5)));
        Assert.Equal(ErrorCodes.Unauthorized, refused.Code);
        Assert.Contains(stranger.PublicKeyZ85, refused.Message);

        // A stranger that claims the allowed key without holding its secret: its proof is wrong.
        var impostor = CurveKeys.ReadSecret(dir.File("stranger.key_secret"));
        Assert.Equal(ErrorCodes.Unauthorized, RawCurveHello(running.Address, server.PublicKey, impostor, allowed.PublicKeyZ85, CurveAuth.Proof(impostor.SecretKey!, server.PublicKey)));
        // No proof at all.
        Assert.Equal(ErrorCodes.Unauthorized, RawCurveHello(running.Address, server.PublicKey, allowed, allowed.PublicKeyZ85, null));

        // A plain-text client cannot even complete the handshake: no reply at all.
        var plain = Assert.Throws<RemoteEnvException>(() => new RemoteVectorEnv(running.Address, connectTimeout: TimeSpan.FromMilliseconds(800)));
        Assert.Equal("timeout", plain.Code);
    }

    [Fact]
    public async Task The_python_client_speaks_curve_and_is_held_to_the_allow_list()
    {
        using var dir = new TempDir();
        CurveKeys.WriteNew(dir.File("server"));
        var allowed = CurveKeys.WriteNew(dir.File("allowed"));
        CurveKeys.WriteNew(dir.File("stranger"));
        File.WriteAllText(dir.File("allow.txt"), allowed.PublicKeyZ85 + "\n");
        await using var running = await TestServer.Start(curveSecretKeyFile: dir.File("server.key_secret"), allowedClientKeysFile: dir.File("allow.txt"));
        var (ok, stdout, _) = PythonClient.Run(PythonClient.Example("random_agent.py"), running.Address, "5", "3", dir.File("server.key"), dir.File("allowed.key_secret"));
        Assert.True(ok, stdout);
        Assert.Contains("\"rewards\"", stdout);
        var (refusedOk, _, stderr) = PythonClient.Run(PythonClient.Example("random_agent.py"), running.Address, "5", "3", dir.File("server.key"), dir.File("stranger.key_secret"));
        Assert.False(refusedOk);
        Assert.Contains("unauthorized", stderr);
    }

    [Fact]
    public void Key_files_are_shared_with_pyzmq_both_ways()
    {
        using var dir = new TempDir();
        var ours = CurveKeys.WriteNew(dir.File("ours"));
        string code = """
            import sys, zmq.auth
            from rlhfgym_client import read_key
            public, secret = zmq.auth.load_certificate(sys.argv[1] + "/ours.key_secret")
            public_only, none = zmq.auth.load_certificate(sys.argv[1] + "/ours.key")
            assert none is None and public_only == public
            assert read_key(sys.argv[1] + "/ours.key_secret", "secret-key") == secret
            assert read_key(secret) == read_key(secret.decode()) == secret   # bytes, as zmq.curve_keypair() gives
            zmq.auth.create_certificates(sys.argv[1], "theirs")
            print(public.decode(), secret.decode())
            """;
        var (ok, stdout, stderr) = PythonClient.Run("-c", code, dir.Path);
        Assert.True(ok, stderr);
        Assert.Equal($"{ours.PublicKeyZ85} {ours.SecretKeyZ85}", stdout.Trim());
        var theirs = CurveKeys.ReadSecret(dir.File("theirs.key_secret"));
        Assert.Equal(theirs.PublicKey, CurveKeys.ReadPublic(dir.File("theirs.key")));
        Assert.Equal(theirs.PublicKey, X25519.PublicKey(theirs.SecretKey!));
    }

    [Fact]
    public void The_python_x25519_matches_the_rfc_7748_vectors()
    {
        string code = "from rlhfgym_client import x25519; " +
            "print(x25519(bytes.fromhex('a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4'), " +
            "bytes.fromhex('e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c')).hex())";
        var (ok, stdout, stderr) = PythonClient.Run("-c", code);
        Assert.True(ok, stderr);
        Assert.Equal("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552", stdout.Trim());
    }

    [Fact]
    public void A_low_order_key_cannot_be_proven()
    {
        var server = new NetMQCertificate();
        byte[] lowOrder = new byte[32]; // u = 0: every X25519 with it is zero, a "shared secret" anyone knows
        var auth = new CurveAuth(server.SecretKey!, [lowOrder]);
        var why = auth.Check(CurveKeys.Encode(lowOrder), new byte[32]);
        Assert.Contains("low-order", why);
        Assert.Throws<ArgumentException>(() => CurveAuth.Proof(new NetMQCertificate().SecretKey!, lowOrder));
    }

    [Fact]
    public void An_allow_list_without_curve_is_refused()
    {
        var o = new Server.EnvServerOptions { AllowedClientKeysFile = "allow.txt" };
        Assert.Contains("CurveSecretKeyFile", Assert.Throws<ArgumentException>(o.Validate).Message);
    }

    private static string RawCurveHello(string address, byte[] serverKey, NetMQCertificate client, string claimedKey, byte[]? proof)
    {
        using var socket = new DealerSocket();
        socket.Options.Linger = TimeSpan.Zero;
        socket.Options.CurveServerKey = serverKey;
        socket.Options.CurveCertificate = client;
        socket.Connect(address);
        socket.SendFrame(MessagePackSerializer.Serialize(new Request { Version = ProtocolVersion.Current, Id = 1, Op = "hello", ClientKey = claimedKey, Proof = proof }));
        Assert.True(socket.TryReceiveFrameBytes(TimeSpan.FromSeconds(5), out var frame), "no reply to hello");
        var reply = MessagePackSerializer.Deserialize<Reply>(frame);
        Assert.False(reply.Ok);
        return reply.Error!.Code;
    }
}
