using RlhfGym.Models.Transformer;
using static TorchSharp.torch;

namespace RlhfGym.Models.Tests;

public class InferenceLanesTests
{
    [Fact]
    public void Both_jobs_run_at_once_on_lanes_with_their_own_thread_count_and_no_grad()
    {
        using var lanes = new InferenceLanes(threadsPerLane: 1);
        int callerThreads = get_num_threads();
        var seen = new (int Thread, int Threads, bool Grad)[2];
        using var barrier = new Barrier(2); // each job waits for the other: passes only if both run at the same time
        lanes.Run(
            () => { barrier.SignalAndWait(TimeSpan.FromSeconds(30)); seen[0] = (Environment.CurrentManagedThreadId, get_num_threads(), is_grad_enabled()); },
            () => { barrier.SignalAndWait(TimeSpan.FromSeconds(30)); seen[1] = (Environment.CurrentManagedThreadId, get_num_threads(), is_grad_enabled()); });
        Assert.NotEqual(seen[0].Thread, seen[1].Thread);
        Assert.DoesNotContain(Environment.CurrentManagedThreadId, seen.Select(s => s.Thread));
        Assert.All(seen, s => Assert.Equal(1, s.Threads));
        Assert.All(seen, s => Assert.False(s.Grad));
        Assert.Equal(callerThreads, get_num_threads()); // the caller's setting is its own
    }

    [Fact]
    public void Threads_started_after_the_lanes_keep_the_process_thread_count()
    {
        int before = get_num_threads();
        using var lanes = new InferenceLanes(threadsPerLane: 1);
        lanes.Run(() => { }, () => { });
        int seen = 0;
        var later = new Thread(() => seen = get_num_threads()); // a fresh thread adopts libtorch's stored default
        later.Start();
        later.Join();
        Assert.Equal(before, seen);
        Assert.Equal(before, get_num_threads());
    }

    [Fact]
    public void An_exception_in_a_lane_reaches_the_caller_and_the_lanes_keep_working()
    {
        using var lanes = new InferenceLanes(1);
        var ex = Assert.Throws<InvalidOperationException>(() => lanes.Run(() => { }, () => throw new InvalidOperationException("lane two failed")));
        Assert.Equal("lane two failed", ex.Message);
        Assert.Throws<AggregateException>(() => lanes.Run(() => throw new ArgumentException("a"), () => throw new ArgumentException("b")));
        int ran = 0;
        lanes.Run(() => Interlocked.Increment(ref ran), () => Interlocked.Increment(ref ran));
        Assert.Equal(2, ran);
    }

    [Fact]
    public void A_job_that_asks_for_lanes_runs_its_pair_in_place()
    {
        using var lanes = new InferenceLanes(1);
        int ran = 0;
        lanes.Run(() => lanes.Run(() => Interlocked.Increment(ref ran), () => Interlocked.Increment(ref ran)), () => Interlocked.Increment(ref ran));
        Assert.Equal(3, ran);
    }

    [Fact]
    public void Two_models_stepped_in_lanes_give_the_logits_they_give_one_after_the_other()
    {
        using var _ = no_grad();
        using var lanes = new InferenceLanes(1);
        random.manual_seed(3);
        using var a = TinyModels.Create(TinyModels.Config(2, MlpKind.SwiGlu, NormKind.RmsNorm, true, false));
        using var b = TinyModels.Create(TinyModels.Config(4, MlpKind.SwiGlu, NormKind.RmsNorm, false, false));
        var tokens = randint(0, 50, [3, 12], ScalarType.Int64);
        (Tensor, Tensor) Run(bool inLanes)
        {
            using var ca = a.NewCache(3, 16);
            using var cb = b.NewCache(3, 16);
            a.Prefill(tokens.narrow(1, 0, 4), [], ca);
            b.Prefill(tokens.narrow(1, 0, 4), [], cb);
            Tensor? la = null, lb = null;
            for (int s = 4; s < 12; s++)
            {
                var t = tokens.select(1, s);
                if (inLanes) lanes.Run(() => la = a.Logits(a.DecodeStep(t, ca)).DetachFromDisposeScope(), () => lb = b.Logits(b.DecodeStep(t, cb)).DetachFromDisposeScope());
                else (la, lb) = (a.Logits(a.DecodeStep(t, ca)), b.Logits(b.DecodeStep(t, cb)));
            }
            return (la!, lb!);
        }
        var (sa, sb) = Run(false);
        var (pa, pb) = Run(true);
        Assert.True((sa - pa).abs().max().item<float>() <= 1e-5);
        Assert.True((sb - pb).abs().max().item<float>() <= 1e-5);
    }

    [Fact]
    public void Threads_per_lane_below_one_is_an_error() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new InferenceLanes(0));
}
