using MessagePack;
using NetMQ.Sockets;
using RlhfGym.Models.Tokenization;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Tests;

/// <summary>
/// What docs/protocol.md promises a stranger's client, at the edges an independent client found: the request id comes
/// back on every error where it was readable, integers out of range are invalid_argument naming the field, nil is a
/// bad request, a heartbeat learns that its session is gone, and score reads a padded response through its EOS.
/// </summary>
public class ProtocolContractTests
{
    private static Reply Send(DealerSocket socket, byte[] frame) => RawWire.Send(socket, frame);

    private static byte[] Map(Dictionary<string, object?> fields) => MessagePackSerializer.Serialize(fields);

    private static DealerSocket Connect(TestServer server) => RawWire.Connect(server.Address);

    private static string MakeSession(DealerSocket socket)
    {
        var made = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 1, ["op"] = "make", ["num_envs"] = 2 }));
        Assert.True(made.Ok, made.Error?.Message);
        Assert.Equal(2, Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 2, ["op"] = "reset", ["session"] = made.Session, ["seed"] = 1 })).Prompts!.Length);
        return made.Session!;
    }

    [Fact]
    public async Task A_wrong_typed_field_is_answered_with_the_request_id()
    {
        await using var server = await TestServer.Start();
        using var socket = Connect(server);
        string session = MakeSession(socket);
        var cases = new (long Id, Dictionary<string, object?> Fields, string Code)[]
        {
            (71, new() { ["op"] = "reset", ["seed"] = "seven" }, ErrorCodes.BadRequest),
            (72, new() { ["op"] = "reset", ["seed"] = ulong.MaxValue }, ErrorCodes.InvalidArgument),
            (73, new() { ["op"] = "step", ["actions"] = new object[] { 1.5, 2.0 } }, ErrorCodes.BadRequest),
            (74, new() { ["op"] = "make", ["num_envs"] = 1L << 40 }, ErrorCodes.InvalidArgument),
            (75, new() { ["op"] = "step", ["actions"] = "5,6" }, ErrorCodes.BadRequest),
        };
        foreach (var (id, fields, code) in cases)
        {
            fields["v"] = "1.0";
            fields["session"] = session;
            fields["id"] = id;
            var reply = Send(socket, Map(fields));
            Assert.False(reply.Ok);
            Assert.Equal(id, reply.Id);
            Assert.True(code == reply.Error!.Code, $"id {id}: {reply.Error.Code}: {reply.Error.Message}");
        }
        // An id that is itself unreadable cannot come back: 0, as documented.
        var noId = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = "x", ["op"] = "hello" }));
        Assert.Equal(0, noId.Id);
        Assert.Equal(ErrorCodes.BadRequest, noId.Error!.Code);
    }

    [Fact]
    public async Task Token_ids_beyond_32_bits_are_invalid_argument_naming_where_they_are()
    {
        await using var server = await TestServer.Start();
        using var socket = Connect(server);
        string session = MakeSession(socket);
        var step = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 81, ["op"] = "step", ["session"] = session, ["actions"] = new long[] { 5, 1L << 31 } }));
        Assert.Equal(81, step.Id);
        Assert.Equal(ErrorCodes.InvalidArgument, step.Error!.Code);
        Assert.Contains("actions[1] = 2147483648", step.Error.Message);
        var score = Send(socket, Map(new()
        {
            ["v"] = "1.0",
            ["id"] = 82,
            ["op"] = "score",
            ["session"] = session,
            ["prompts"] = new[] { new long[] { 3, 4 } },
            ["responses"] = new[] { new long[] { 5, -(1L << 33) } },
        }));
        Assert.Equal(ErrorCodes.InvalidArgument, score.Error!.Code);
        Assert.Contains("responses[0][1]", score.Error.Message);
        // Within 32 bits but outside the vocabulary: the env's own invalid_argument.
        var vocab = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 83, ["op"] = "step", ["session"] = session, ["actions"] = new long[] { 5, 1 << 30 } }));
        Assert.Equal(ErrorCodes.InvalidArgument, vocab.Error!.Code);
        // The session is unharmed.
        Assert.True(Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 84, ["op"] = "step", ["session"] = session, ["actions"] = new long[] { 5, 6 } })).Ok);
    }

    [Fact]
    public async Task A_nil_frame_is_a_bad_request_not_an_internal_error()
    {
        await using var server = await TestServer.Start();
        using var socket = Connect(server);
        var reply = Send(socket, [0xc0]);
        Assert.Equal(ErrorCodes.BadRequest, reply.Error!.Code);
        Assert.Contains("nil", reply.Error.Message);
        Assert.Equal(ErrorCodes.BadRequest, Send(socket, [0x91, 0xc0]).Error!.Code); // [nil]: an array, not a map
    }

    [Fact]
    public async Task Ping_answers_whether_the_session_is_alive()
    {
        await using var server = await TestServer.Start();
        using var socket = Connect(server);
        Assert.True(Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 1, ["op"] = "ping" })).Ok); // no session: the server is there
        string session = MakeSession(socket);
        var alive = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 3, ["op"] = "ping", ["session"] = session }));
        Assert.True(alive.Ok);
        Assert.Equal(session, alive.Session);
        var unknown = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 4, ["op"] = "ping", ["session"] = "no-such-session" }));
        Assert.Equal(ErrorCodes.UnknownSession, unknown.Error!.Code);
        Assert.Equal(4, unknown.Id);
        Assert.True(Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 5, ["op"] = "close", ["session"] = session })).Ok);
        Assert.Equal(ErrorCodes.UnknownSession, Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 6, ["op"] = "ping", ["session"] = session })).Error!.Code);
    }

    [Fact]
    public async Task Leniencies_are_as_documented()
    {
        await using var server = await TestServer.Start();
        using var socket = Connect(server);
        // Trailing bytes after the map are ignored.
        byte[] hello = Map(new() { ["v"] = "1.0", ["id"] = 5, ["op"] = "hello" });
        var trailing = Send(socket, [.. hello, 0xc0, 0x01]);
        Assert.True(trailing.Ok);
        Assert.Equal(5, trailing.Id);
        // A key given twice: the last one counts.
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        var writer = new MessagePackWriter(buffer);
        writer.WriteMapHeader(4);
        writer.Write("v"); writer.Write("1.0");
        writer.Write("id"); writer.Write(6);
        writer.Write("op"); writer.Write("hello");
        writer.Write("id"); writer.Write(7);
        writer.Flush();
        Assert.Equal(7, Send(socket, buffer.WrittenMemory.ToArray()).Id);
        // No id at all: 0.
        var noId = Send(socket, Map(new() { ["v"] = "1.0", ["op"] = "hello" }));
        Assert.True(noId.Ok);
        Assert.Equal(0, noId.Id);
    }

    [Fact]
    public async Task Assets_download_in_chunks_and_load_as_a_hugging_face_checkpoint()
    {
        await using var server = await TestServer.Start(maxFrameBytes: 64 << 10);
        using var env = new RemoteVectorEnv(server.Address, numEnvs: 1);
        using var dir = new TempDir();
        var paths = env.DownloadAssets(dir.Path);
        // No file under a Hugging Face name holds anything else: the word tokenizer in RlhfGym's JSON has its own name,
        // and reference/ is a complete Hugging Face model folder, its tokenizer included.
        Assert.Equal(File.ReadAllBytes(Path.Combine(TestServer.Bundle.Value, WordTokenizer.FileName)), File.ReadAllBytes(paths[WordTokenizer.FileName]));
        Assert.DoesNotContain("tokenizer.json", paths.Keys);
        Assert.Equal(["reference/config.json", "reference/model.safetensors", "reference/tokenizer.json", "reference/tokenizer_config.json", WordTokenizer.FileName],
            paths.Keys.Order(StringComparer.Ordinal));
        using var hf = RlhfGym.Models.HuggingFace.HfCheckpoint.Load(Path.Combine(dir.Path, "reference"));
        Assert.Equal(env.Spec.VocabSize, hf.Model.Config.VocabSize);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp-*", SearchOption.AllDirectories));

        using var socket = Connect(server);
        var unknown = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 1, ["op"] = "asset", ["name"] = "secrets.txt" }));
        Assert.Equal(ErrorCodes.InvalidArgument, unknown.Error!.Code);
        Assert.Contains("reference/model.safetensors", unknown.Error.Message); // lists what there is
        var tooLong = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 2, ["op"] = "asset", ["name"] = WordTokenizer.FileName, ["length"] = 1 << 20 }));
        Assert.Equal(ErrorCodes.InvalidArgument, tooLong.Error!.Code);
        var past = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 3, ["op"] = "asset", ["name"] = WordTokenizer.FileName, ["offset"] = 1L << 40 }));
        Assert.Equal(ErrorCodes.InvalidArgument, past.Error!.Code);
    }

    [Fact]
    public async Task Hello_announces_the_server_limits()
    {
        await using var server = await TestServer.Start(sessionTimeout: 42, maxSessions: 7);
        using var socket = Connect(server);
        var hello = Send(socket, Map(new() { ["v"] = "1.0", ["id"] = 1, ["op"] = "hello" }));
        Assert.Equal(4 << 20, hello.Limits!.MaxFrameBytes);
        Assert.Equal(7, hello.Limits.MaxSessions);
        Assert.Equal(42, hello.Limits.SessionTimeoutSeconds);
        Assert.Equal(4 * hello.Limits.MaxNumEnvs, hello.Limits.MaxScorePairs);
    }

    [Fact]
    public async Task Score_reads_a_padded_response_through_its_first_eos()
    {
        await using var server = await TestServer.Start();
        using var env = new RemoteVectorEnv(server.Address, numEnvs: 1);
        int[] prompt = env.Reset(2).Prompts[0];
        int eos = env.Spec.EosIds[0];
        var scored = env.Score([prompt, prompt, prompt], [[5, 9, eos], [5, 9, eos, 0, 0], [5, 9, eos, -1, 1 << 30]]);
        Assert.All(scored, e => Assert.Equal(new[] { 5, 9, eos }, e.Response));
        Assert.All(scored, e => Assert.True(e.Terminated && !e.Truncated));
        // Same rows, same rewards (to float rounding: rows of one batch may take different BLAS paths).
        foreach (var padded in scored.Skip(1))
            for (int t = 0; t < 3; t++) Assert.Equal(scored[0].PerToken[t], padded.PerToken[t], 1e-5f);
    }
}
