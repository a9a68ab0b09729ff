using static TorchSharp.torch;

namespace RlhfGym.Models;

/// <summary>
/// Two independent inference computations at once (the env's reference LM and reward model), each on its own OS thread
/// with half of libtorch's intra-op threads. On a CPU, one model's decode step is a chain of small ops whose matrix
/// products scale poorly across threads; two such chains side by side, one core each, keep both cores busy with
/// nothing to synchronise (docs/benchmarks.md, `bench decode`: 1.4× at d256, 1.8× at d64 on 2 cores).
/// </summary>
/// <remarks>
/// libtorch keeps its intra-op thread count, grad mode and TorchSharp its dispose scopes per thread, so each lane sets
/// its own thread count once, and every job runs under no_grad in a dispose scope of its own: a tensor a job wants to
/// hand back must be detached from it (<c>DetachFromDisposeScope</c>) and is then the caller's to dispose. One shared
/// pair serves the process; callers take turns.
/// </remarks>
public sealed class InferenceLanes : IDisposable
{
    private static readonly Lazy<InferenceLanes> SharedPair = new(() => new InferenceLanes(Math.Max(1, get_num_threads() / 2)));

    /// <summary>The process's pair, made on first use with half of the current thread count per lane.</summary>
    public static InferenceLanes Shared => SharedPair.Value;

    /// <summary>Set to 0 to run the two models one after the other (e.g. to compare); any other value or none: lanes.</summary>
    public const string SwitchVariable = "RLHFGYM_INFERENCE_LANES";

    /// <summary>Whether running two models side by side pays: on a CPU with at least two intra-op threads, unless switched off.</summary>
    public static bool Pay(Device device) =>
        device.type == TorchSharp.DeviceType.CPU && get_num_threads() >= 2 && Environment.GetEnvironmentVariable(SwitchVariable) != "0";

    private readonly Lane[] _lanes;
    private readonly object _turn = new();

    public int ThreadsPerLane { get; }

    public InferenceLanes(int threadsPerLane)
    {
        if (threadsPerLane < 1) throw new ArgumentOutOfRangeException(nameof(threadsPerLane), threadsPerLane, "threads per lane must be >= 1");
        ThreadsPerLane = threadsPerLane;
        // libtorch's set_num_threads also stores the count as the default every thread adopts on its first parallel op.
        // The lanes set theirs, then this thread puts the default back, so threads made later (a server's, a user's)
        // keep the process's count instead of a lane's.
        int processThreads = get_num_threads();
        _lanes = [new Lane(threadsPerLane, 0), new Lane(threadsPerLane, 1)];
        foreach (var lane in _lanes) lane.Ready.Wait();
        set_num_threads(processThreads);
    }

    /// <summary>Run both jobs at once and return when both have finished; an exception from either is rethrown here.</summary>
    public void Run(Action first, Action second)
    {
        // A job that itself asks for lanes runs its pair in place instead of waiting on a lane it occupies.
        if (Lane.Current is not null)
        {
            Lane.RunJob(first);
            Lane.RunJob(second);
            return;
        }
        lock (_turn)
        {
            _lanes[0].Post(first);
            _lanes[1].Post(second);
            var errors = _lanes.Select(l => l.Wait()).OfType<Exception>().ToList();
            if (errors.Count == 1) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(errors[0]).Throw();
            if (errors.Count > 1) throw new AggregateException(errors);
        }
    }

    public void Dispose()
    {
        foreach (var lane in _lanes) lane.Dispose();
    }

    private sealed class Lane : IDisposable
    {
        [ThreadStatic] public static Lane? Current;
        private readonly Thread _thread;
        public readonly ManualResetEventSlim Ready = new(false);
        private readonly SemaphoreSlim _start = new(0);
        private readonly ManualResetEventSlim _done = new(false);
        private Action? _job;
        private Exception? _error;
        private volatile bool _stopping;

        public Lane(int threads, int index)
        {
            _thread = new Thread(() => Loop(threads)) { IsBackground = true, Name = $"rlhfgym-inference-lane-{index}" };
            _thread.Start();
        }

        private void Loop(int threads)
        {
            Current = this;
            get_num_threads(); // libtorch's per-thread first-use set-up, so it cannot later replace the count set here
            set_num_threads(threads);
            Ready.Set();
            while (true)
            {
                _start.Wait();
                if (_stopping) return;
                try { RunJob(_job!); }
                catch (Exception e) { _error = e; }
                _done.Set();
            }
        }

        public static void RunJob(Action job)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            job();
        }

        public void Post(Action job)
        {
            _job = job;
            _error = null;
            _done.Reset();
            _start.Release();
        }

        public Exception? Wait()
        {
            _done.Wait();
            _job = null;
            return _error;
        }

        public void Dispose()
        {
            _stopping = true;
            _start.Release();
            _thread.Join();
            _start.Dispose();
            _done.Dispose();
            Ready.Dispose();
        }
    }
}
