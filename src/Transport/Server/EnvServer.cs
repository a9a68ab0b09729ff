using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using NetMQ;
using NetMQ.Sockets;

namespace RlhfGym.Transport.Server;

/// <summary>
/// Serves envs over ZeroMQ: a ROUTER socket; each request is [client identity, request frame] and gets exactly one
/// reply [identity, reply frame]. A message with the wrong number of frames is answered with an error when it names
/// a client, else dropped. Runs as a hosted service; stops cleanly on host shutdown (SIGINT/SIGTERM).
/// </summary>
public sealed class EnvServer(IOptions<EnvServerOptions> options, ILogger<EnvServer> log) : BackgroundService
{
    /// <summary>Set once the socket is bound (tests and callers wait on it).</summary>
    public TaskCompletionSource Bound { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.Factory.StartNew(() => Serve(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Serve(CancellationToken stop)
    {
        var o = options.Value;
        using var handler = new RequestHandler(o, log);
        using var router = new RouterSocket();
        router.Options.Linger = TimeSpan.Zero;
        try
        {
            router.Bind(o.Bind);
        }
        catch (Exception e)
        {
            Bound.TrySetException(new IOException($"cannot bind {o.Bind}: {e.Message} (is another server using that port?)", e));
            throw;
        }
        Bound.TrySetResult();
        log.LogInformation("serving envs on {Bind} (default env {Env})", o.Bind, o.Env);
        var lastReclaim = DateTime.UtcNow;
        var message = new NetMQMessage();
        while (!stop.IsCancellationRequested)
        {
            if (router.TryReceiveMultipartMessage(TimeSpan.FromMilliseconds(100), ref message))
            {
                var identity = message[0];
                if (message.FrameCount != 2)
                {
                    if (message.FrameCount >= 1 && identity.BufferSize > 0)
                    {
                        var reply = handler.Handle(ReadOnlyMemory<byte>.Empty, Convert.ToHexString(identity.ToByteArray()));
                        router.SendMoreFrame(identity.ToByteArray()).SendFrame(reply);
                    }
                    message.Clear();
                    continue;
                }
                byte[] answer = handler.Handle(message[1].ToByteArray(), Convert.ToHexString(identity.ToByteArray()));
                router.SendMoreFrame(identity.ToByteArray()).SendFrame(answer);
                message.Clear();
            }
            if ((DateTime.UtcNow - lastReclaim).TotalSeconds >= 1)
            {
                handler.ReclaimIdle(DateTime.UtcNow);
                lastReclaim = DateTime.UtcNow;
            }
        }
        log.LogInformation("env server on {Bind} stopped; {Sessions} sessions released", o.Bind, handler.SessionCount);
    }
}
