using MessagePack;
using NetMQ;
using NetMQ.Sockets;
using RlhfGym.Transport.Client;
using RlhfGym.Transport.Wire;

namespace RlhfGym.Transport.Tests;

public class ProtocolRobustnessTests
{
    private static Reply Send(DealerSocket socket, byte[] frame) => RawWire.Send(socket, frame);

    private static byte[] Pack(Request r) => MessagePackSerializer.Serialize(r);

    [Fact]
    public async Task Random_and_mutated_frames_get_error_replies_and_a_good_client_carries_on()
    {
        await using var server = await TestServer.Start();
        using var good = new RemoteVectorEnv(server.Address, numEnvs: 2);
        good.Reset(3);
        using var bad = new DealerSocket();
        bad.Options.Linger = TimeSpan.Zero;
        bad.Connect(server.Address);
        var rng = new Random(11);
        var valid = new List<byte[]>
        {
            Pack(new Request { Version = "1.0", Id = 1, Op = "step", Session = "nope", Actions = [1, 2] }),
            Pack(new Request { Version = "1.0", Id = 2, Op = "reset", Session = "x", Seed = 4 }),
            Pack(new Request { Version = "1.0", Id = 3, Op = "make", NumEnvs = 100000 }),
            Pack(new Request { Version = "1.0", Id = 4, Op = "score", Session = "s", Prompts = [[1]], Responses = [[2]] }),
        };
        int errors = 0;
        const int frames = 100_000;
        for (int i = 0; i < frames; i++)
        {
            byte[] frame;
            switch (i % 5)
            {
                case 0: // random bytes
                    frame = new byte[rng.Next(0, 64)];
                    rng.NextBytes(frame);
                    break;
                case 1: // a valid request truncated
                    var v = valid[rng.Next(valid.Count)];
                    frame = v[..rng.Next(0, v.Length)];
                    break;
                case 2: // a valid request with one byte flipped
                    frame = (byte[])valid[rng.Next(valid.Count)].Clone();
                    frame[rng.Next(frame.Length)] ^= (byte)(1 << rng.Next(8));
                    break;
                case 3: // a huge declared length (array32 of 2^31 elements)
                    frame = [0x81, 0xa2, (byte)'i', (byte)'d', 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x01];
                    break;
                default: // wrong types / unknown ops / unknown sessions
                    frame = rng.Next(3) switch
                    {
                        0 => MessagePackSerializer.Serialize(new Dictionary<string, object> { ["v"] = "1.0", ["id"] = "not-a-number", ["op"] = 7 }),
                        1 => Pack(new Request { Version = "1.0", Id = i, Op = "fly" }),
                        _ => valid[rng.Next(valid.Count)],
                    };
                    break;
            }
            var reply = Send(bad, frame);
            if (!reply.Ok) errors++;
            if (i % 10_000 == 0) Assert.Equal(2, good.Step([5, 6]).Rewards.Length); // the good session is unharmed
        }
        Assert.True(errors >= frames * 0.99, $"{errors} error replies to {frames} bad frames");
        Assert.Equal(2, good.Step([5, 6]).Rewards.Length);
        // A message with the wrong number of frames is answered too.
        bad.SendMoreFrame([1]).SendFrame([2]);
        Assert.True(bad.TryReceiveFrameBytes(TimeSpan.FromSeconds(5), out var answer));
        Assert.False(MessagePackSerializer.Deserialize<Reply>(answer).Ok);
    }

    [Fact]
    public async Task Version_mismatch_names_both_versions_and_unknown_ops_are_errors()
    {
        await using var server = await TestServer.Start();
        using var s = new DealerSocket();
        s.Connect(server.Address);
        var r = Send(s, Pack(new Request { Version = "2.3", Id = 9, Op = "hello" }));
        Assert.False(r.Ok);
        Assert.Equal(9, r.Id);
        Assert.Equal(ErrorCodes.VersionMismatch, r.Error!.Code);
        Assert.Contains("2.3", r.Error.Message);
        Assert.Contains(ProtocolVersion.Current, r.Error.Message);
        Assert.True(Send(s, Pack(new Request { Version = "1.7", Id = 10, Op = "hello" })).Ok); // minor differences are fine
        Assert.Equal(ErrorCodes.UnknownOp, Send(s, Pack(new Request { Version = "1.0", Id = 11, Op = "teleport" })).Error!.Code);
        Assert.Equal(ErrorCodes.UnknownSession, Send(s, Pack(new Request { Version = "1.0", Id = 12, Op = "step", Session = "gone", Actions = [1] })).Error!.Code);
        var made = Send(s, Pack(new Request { Version = "1.0", Id = 13, Op = "make", NumEnvs = 1, Options = new() { ["normalizer"] = "median" } }));
        Assert.Equal(ErrorCodes.InvalidArgument, made.Error!.Code);
        Assert.Contains("normalizer", made.Error.Message);
    }

    [Fact]
    public async Task Sixty_four_concurrent_clients_each_get_their_own_replies()
    {
        await using var server = await TestServer.Start();
        // 9,600 requests from 64 clients at once: enough interleaving to catch a crossed reply. (1,000 steps each took
        // two minutes of the suite: the server steps one request at a time.)
        const int clients = 64, steps = 150;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        var threads = Enumerable.Range(0, clients).Select(c => new Thread(() =>
        {
            try
            {
                using var env = new RemoteVectorEnv(server.Address, numEnvs: 1, stepTimeout: TimeSpan.FromMinutes(5));
                var prompts = env.Reset(c).Prompts;
                for (int s = 0; s < steps; s++)
                {
                    var r = env.Step([3 + (c + s) % 100]); // replies are matched by id inside the client; check the shape
                    if (r.Rewards.Length != 1) failures.Add($"client {c} step {s}: {r.Rewards.Length} rewards");
                }
            }
            catch (Exception e) { failures.Add($"client {c}: {e.Message}"); }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.True(failures.IsEmpty, string.Join("\n", failures.Take(5)));
    }
}
