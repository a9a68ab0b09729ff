using RlhfGym.Env.Core;
using RlhfGym.Transport.Security;

namespace RlhfGym.Transport.Client;

/// <summary>
/// One vector env whose sub-envs are spread over several env servers (docs/env.md, "Sharded env"): contiguous slices,
/// one session per server, and every Step fans out to all of them at once. When a server dies, restarts or drains, its
/// sub-envs move: an episode in flight there ends with Truncated and <see cref="StepResult.Lost"/> (no rewards), and
/// the sub-env gets a new session on a remaining server when it is next reset (under next-step autoreset: the next
/// step, as for any ended episode). Training goes on; <see cref="NoServerLeftException"/> only when no server is left.
/// A full Reset brings back servers that answer `health` as ready again and re-spreads the sub-envs evenly.
/// </summary>
public sealed class ShardedVectorEnv : IVectorEnv, IScoringEnv
{
    private sealed class Shard(ShardServer server, RemoteVectorEnv env, int[] rows)
    {
        public ShardServer Server { get; } = server;
        public RemoteVectorEnv Env { get; } = env;
        /// <summary>The sub-envs it runs, ascending: row i of the session is sub-env Rows[i] of this env.</summary>
        public int[] Rows { get; } = rows;
        public int[] Actions { get; } = new int[rows.Length];
        /// <summary>This shard's step with its <see cref="Actions"/>, made once: the fan-out of every step reuses it.</summary>
        public Func<StepResult> StepCall => _stepCall ??= () => Env.Step(Actions);
        private Func<StepResult>? _stepCall;
    }

    private readonly ShardServer[] _servers;
    private readonly string? _env;
    private readonly int _numEnvs;
    private readonly AutoresetMode _autoreset;
    private readonly IReadOnlyDictionary<string, string>? _options;
    private readonly TimeSpan _connectTimeout, _stepTimeout;
    private readonly CurveClientKeys? _curve;
    private readonly TimeSpan? _heartbeat;
    private readonly Action<string>? _log;
    private readonly List<Shard> _shards = [];
    private readonly Shard?[] _shardOf;        // null: the sub-env's server was lost and it has no session yet
    private readonly bool[] _ended;            // its episode ended at the last step (next-step: this step resets it; disabled: finished)
    private readonly bool[] _lostUnreported;   // its episode in flight was lost with its server: the Step under way, or the next, says so
    private readonly int[][] _prompts;
    private readonly string[] _promptIds, _promptTexts;
    private readonly StepResult _result;
    private long? _seed; // the last seed a Reset was given: the base of the seeds of sessions made again after a loss
    private int _sessionsMade;
    private bool _disposed;

    /// <summary>Servers given up on (in any call) since the env was made.</summary>
    public int ServersLost { get; private set; }
    /// <summary>Episodes cut short by a lost server since the env was made (each reported once, with Lost).</summary>
    public int EpisodesLost { get; private set; }
    public IReadOnlyList<ShardServer> Servers => _servers;
    public EnvSpec Spec { get; private set; } = null!;

    /// <param name="addresses">The env servers (`tcp://host:port`), e.g. a StatefulSet's per-pod DNS names; each must
    /// serve the same env. A server that does not answer at start is left out (and retried at each full Reset).</param>
    /// <param name="log">Told, in one line each, when a server is lost or comes back and when sub-envs move.</param>
    public ShardedVectorEnv(IReadOnlyList<string> addresses, string? env = null, int numEnvs = 1, AutoresetMode autoreset = AutoresetMode.NextStep,
        IReadOnlyDictionary<string, string>? options = null, TimeSpan? connectTimeout = null, TimeSpan? stepTimeout = null,
        CurveClientKeys? curve = null, TimeSpan? heartbeat = null, Action<string>? log = null)
    {
        ArgumentNullException.ThrowIfNull(addresses);
        if (addresses.Count == 0) throw new ArgumentException("a sharded env needs at least one server address", nameof(addresses));
        var repeated = addresses.GroupBy(a => a).FirstOrDefault(g => g.Count() > 1);
        if (repeated is not null) throw new ArgumentException($"server address {repeated.Key} is listed twice", nameof(addresses));
        if (numEnvs < 1) throw new ArgumentOutOfRangeException(nameof(numEnvs), numEnvs, "number of envs must be >= 1");
        _servers = addresses.Select(a => new ShardServer(a)).ToArray();
        _env = env;
        _numEnvs = numEnvs;
        _autoreset = autoreset;
        _options = options;
        _connectTimeout = connectTimeout ?? TimeSpan.FromSeconds(10);
        _stepTimeout = stepTimeout ?? TimeSpan.FromSeconds(60);
        _curve = curve;
        _heartbeat = heartbeat;
        _log = log;
        _shardOf = new Shard?[numEnvs];
        _ended = new bool[numEnvs];
        _lostUnreported = new bool[numEnvs];
        _prompts = new int[numEnvs][];
        _promptIds = new string[numEnvs];
        _promptTexts = new string[numEnvs];
        _result = new StepResult(numEnvs);
        try { Spread(groupSize: 1); }
        catch
        {
            CloseAll();
            throw;
        }
    }

    public ResetResult Reset(long? seed = null, ResetOptions? options = null)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var mask = options?.Mask;
        if (mask is not null && mask.Length != _numEnvs) throw new ArgumentException($"reset mask has {mask.Length} entries, the env has {_numEnvs} sub-envs");
        int group = options?.GroupSize ?? 1;
        if (seed is not null) _seed = seed;
        bool full = mask is null || mask.All(m => m);
        if (!full && _prompts.Any(p => p is null)) throw new InvalidOperationException("the first Reset must reset every sub-env (no mask, or every entry true)");
        var rows = Enumerable.Range(0, _numEnvs).Where(b => mask is null || mask[b]).ToArray();
        if (group < 1 || rows.Length % group != 0)
            throw new ArgumentException($"group size {group} must be >= 1 and divide the {rows.Length} sub-envs being reset");
        if (full)
        {
            Probe(_servers.Where(s => !s.Alive)); // one that is back gets its share again
            if (!LaidOutFor(group)) Spread(group);
        }
        var reset = rows.ToHashSet();
        // A group of consecutive sub-envs shares a prompt only within one session: each group must sit in one shard.
        for (int g = 0; g < rows.Length; g += group)
            if (rows[g..(g + group)].Select(b => _shardOf[b]).Distinct().Count() > 1)
                throw new ArgumentException($"sub-envs {rows[g]}..{rows[g + group - 1]} (one group of {group}) run on different servers: reset every sub-env to regroup them");

        // Slice j (by its first sub-env) gets seed + j, whatever order its session was made in.
        var work = _shards.OrderBy(s => s.Rows[0]).Select((shard, j) => (shard, j, mask: shard.Rows.Select(reset.Contains).ToArray()))
            .Where(w => w.mask.Any(m => m)).ToList();
        var outcomes = FanOut(work.Select(w => (Func<ResetResult>)(() =>
            w.shard.Env.Reset(Offset(seed, w.j), new ResetOptions { Mask = w.mask.All(m => m) ? null : w.mask, GroupSize = group }))).ToList());
        Exception? callersError = null;
        for (int i = 0; i < work.Count; i++)
        {
            var (shard, _, _) = work[i];
            if (outcomes[i].Error is { } error)
            {
                if (IsServerLoss(error)) Lose(shard, error);
                else callersError ??= error;
                continue;
            }
            // The server reports every sub-env's current prompt, the ones it autoreset included.
            var r = outcomes[i].Value!;
            for (int k = 0; k < shard.Rows.Length; k++) SetPrompt(shard.Rows[k], r.Prompts[k], r.PromptIds[k], r.PromptTexts[k]);
        }
        var orphans = rows.Where(b => _shardOf[b] is null).ToArray();
        if (orphans.Length > 0 && callersError is null) Rehome(orphans, group);
        foreach (int b in rows)
        {
            _ended[b] = false;
            _lostUnreported[b] = false;
        }
        ThrowIfAny(callersError);
        return new ResetResult((int[][])_prompts.Clone(), (string[])_promptIds.Clone(), (string[])_promptTexts.Clone());
    }

    public StepResult Step(ReadOnlySpan<int> actions)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_prompts[0] is null) throw new InvalidOperationException("call Reset before Step");
        if (actions.Length != _numEnvs) throw new ArgumentException($"expected {_numEnvs} actions (one per sub-env), got {actions.Length}");
        // Everything is checked here, before any server steps: a rejected call must not leave the shards out of step.
        bool anyRunning = false;
        for (int b = 0; b < _numEnvs; b++)
        {
            int a = actions[b];
            if (_ended[b] && _autoreset == AutoresetMode.NextStep) continue;
            if (_ended[b])
            {
                if (a != EnvSpec.NoAction)
                    throw new InvalidOperationException($"sub-env {b} has finished its episode and autoreset is disabled: pass {EnvSpec.NoAction} as its action, or Reset it");
                continue;
            }
            if (a < 0 || a >= Spec.VocabSize) throw new ArgumentOutOfRangeException(nameof(actions), a, $"action of sub-env {b} must be a token id in 0..{Spec.VocabSize - 1}");
            anyRunning = true;
        }
        if (!anyRunning && _autoreset == AutoresetMode.Disabled) throw new InvalidOperationException("every sub-env has finished and autoreset is disabled: call Reset");
        _result.Clear();

        var shards = _shards.ToList();
        foreach (var shard in shards)
            for (int k = 0; k < shard.Rows.Length; k++) shard.Actions[k] = actions[shard.Rows[k]];
        var outcomes = FanOut(shards.ConvertAll(s => s.StepCall));
        // Every reply is handled (losses detached, results copied) before an error that is not a server's loss (a
        // failed forward: internal, invalid_state) is thrown, so the other shards' bookkeeping stays right.
        Exception? callersError = null;
        for (int i = 0; i < shards.Count; i++)
        {
            if (outcomes[i].Error is not { } error) Copy(shards[i], outcomes[i].Value!);
            else if (IsServerLoss(error)) Lose(shards[i], error);
            else callersError ??= error;
        }
        for (int b = 0; b < _numEnvs; b++)
            if (_lostUnreported[b])
            {
                _lostUnreported[b] = false;
                MarkLost(b);
            }
        // Under next-step autoreset an orphan's reset step is the step after its episode ended: it gets its new session now.
        if (_autoreset == AutoresetMode.NextStep && Array.IndexOf(_shardOf, null) >= 0)
        {
            var due = Enumerable.Range(0, _numEnvs).Where(b => _shardOf[b] is null && _ended[b]).ToArray();
            if (due.Length > 0 && callersError is null)
            {
                try
                {
                    Rehome(due, groupSize: 1);
                    foreach (int b in due)
                    {
                        _result.ResetPrompts[b] = _prompts[b];
                        _result.ResetPromptIds[b] = _promptIds[b];
                    }
                }
                catch (Exception e) when (e is not NoServerLeftException) { callersError = e; } // tried again next step
            }
        }
        for (int b = 0; b < _numEnvs; b++)
        {
            if (_result.ResetPrompts[b] is not null) _ended[b] = false;
            if (_result.Terminated[b] || _result.Truncated[b]) _ended[b] = true;
        }
        ThrowIfAny(callersError);
        return _result;
    }

    /// <summary>Scores on any live server; a server lost meanwhile is given up on and the next one asked.</summary>
    public IReadOnlyList<EpisodeRewards> Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses) =>
        OnAnyServer(env => env.Score(prompts, responses));

    /// <summary>The env's downloadable files (<see cref="RemoteVectorEnv.Assets"/>), from any live server.</summary>
    public IReadOnlyList<Wire.AssetMessage> Assets() => OnAnyServer(env => env.Assets());

    /// <summary><see cref="RemoteVectorEnv.DownloadAssets"/> from any live server: every server serves the same env.</summary>
    public IReadOnlyDictionary<string, string> DownloadAssets(string directory) => OnAnyServer(env => env.DownloadAssets(directory));

    private T OnAnyServer<T>(Func<RemoteVectorEnv, T> call)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        while (_shards.FirstOrDefault() is { } shard)
        {
            try { return call(shard.Env); }
            catch (RemoteEnvException e) when (IsServerLoss(e)) { Lose(shard, e); }
        }
        // No shard holds a session (every one was lost): a live server still answers, through a session of its own.
        while (true)
        {
            var server = LeastLoaded() ?? Revive() ?? throw NoServerLeft();
            try
            {
                using var temporary = Connect(server, 1);
                return call(temporary);
            }
            catch (RemoteEnvException e) when (IsServerLoss(e)) { GiveUp(server, e.Message); }
        }
    }

    private static void ThrowIfAny(Exception? error)
    {
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error); // as thrown, with its stack
    }

    // The sub-env's episode ends here, cut short: it was running on a server that is gone.
    private void MarkLost(int b)
    {
        _result.Truncated[b] = true;
        _result.Terminated[b] = false;
        _result.Lost[b] = true;
        _result.Rewards[b] = 0;
        _result.RefLogProb[b] = float.NaN;
        _result.RefEntropy[b] = float.NaN;
        _result.RawRead[b] = float.NaN;
        _result.Episodes[b] = null;
        EpisodesLost++;
    }

    // A shard whose server failed (IsServerLoss: every caller sorts its errors first) is let go of.
    private void Lose(Shard shard, Exception error)
    {
        Detach(shard);
        // A restarted server forgot the session but can take a new one; a dead or draining one cannot.
        if (error is not SessionLostException) GiveUp(shard.Server, error.Message);
        _log?.Invoke($"lost the session at {shard.Server.Address} ({error.Message}); its {shard.Rows.Length} sub-envs move");
        // Its episodes in flight are lost: the Step under way (or the next one) reports them.
        foreach (int b in shard.Rows) _lostUnreported[b] |= !_ended[b];
    }

    private void GiveUp(ShardServer server, string why)
    {
        if (!server.Alive) return;
        server.Alive = false;
        server.LostReason = why;
        server.LastProbe = DateTime.UtcNow;
        ServersLost++;
    }

    /// <summary>
    /// A server problem rather than the caller's: no reply, a dropped connection, a session the server forgot, a
    /// server shutting down. These move sub-envs; anything else (a bad argument) is the caller's error and is thrown.
    /// </summary>
    private static bool IsServerLoss(Exception e) =>
        e is SessionLostException or ServerDrainingException || e is RemoteEnvException { Code: "timeout" or "disconnected" or "unreachable" or "unknown_session" };

    /// <summary>New sessions for sub-envs that have none, on the least-loaded live servers, reset at once.</summary>
    private void Rehome(int[] rows, int groupSize)
    {
        while (true)
        {
            var server = LeastLoaded() ?? Revive() ?? throw NoServerLeft();
            Shard? shard = null;
            ResetResult reset;
            try
            {
                shard = Adopt(server, Connect(server, rows.Length), rows);
                reset = shard.Env.Reset(ShardSeed(_servers.Length + _sessionsMade), new ResetOptions { GroupSize = groupSize });
            }
            catch (RemoteEnvException e) when (IsServerLoss(e))
            {
                if (shard is not null) Detach(shard); // made, but its first reset failed
                GiveUp(server, e.Message);
                continue;
            }
            for (int k = 0; k < rows.Length; k++) SetPrompt(rows[k], reset.Prompts[k], reset.PromptIds[k], reset.PromptTexts[k]);
            _log?.Invoke($"{rows.Length} sub-envs now run at {server.Address}");
            return;
        }
    }

    // Let go of a shard whose server failed: its sub-envs have no session until they are rehomed.
    private void Detach(Shard shard)
    {
        _shards.Remove(shard);
        shard.Env.Abandon();
        shard.Server.SubEnvs -= shard.Rows.Length;
        foreach (int b in shard.Rows) _shardOf[b] = null;
    }

    private ShardServer? LeastLoaded() => _servers.Where(s => s.Alive).MinBy(s => s.SubEnvs);

    /// <summary>
    /// Closes every session and spreads the sub-envs evenly over the servers that answer `health` as ready, in
    /// contiguous slices of whole groups; each slice gets a session and (when called by Reset) nothing more: Reset
    /// resets them.
    /// </summary>
    private void Spread(int groupSize)
    {
        CloseAll();
        while (true)
        {
            if (!_servers.Any(s => s.Alive) && Revive() is null) throw NoServerLeft();
            var slices = Slices(groupSize);
            var outcomes = FanOut(slices.Select(s => (Func<RemoteVectorEnv>)(() => Connect(s.Server, s.Rows.Length))).ToList());
            bool allMade = true;
            Exception? callersError = null;
            // Every session made is adopted (or disposed by Adopt) before an error is thrown, so CloseAll closes them all.
            for (int j = 0; j < slices.Count; j++)
            {
                if (outcomes[j].Error is { } error)
                {
                    if (IsServerLoss(error)) GiveUp(slices[j].Server, error.Message);
                    else callersError ??= error;
                    allMade = false;
                    continue;
                }
                try { Adopt(slices[j].Server, outcomes[j].Value!, slices[j].Rows); }
                catch (ArgumentException e) { callersError ??= e; } // another env there: Adopt disposed the session
            }
            if (callersError is not null)
            {
                CloseAll();
                ThrowIfAny(callersError);
            }
            if (allMade) return;
            CloseAll(); // a server was lost while spreading: spread again over the rest
        }
    }

    /// <summary>The even spread over the live servers: contiguous slices of whole groups, the first ones a group larger.</summary>
    private List<(ShardServer Server, int[] Rows)> Slices(int groupSize)
    {
        var live = _servers.Where(s => s.Alive).ToList();
        int blocks = _numEnvs / groupSize, used = Math.Min(live.Count, blocks);
        var slices = new List<(ShardServer Server, int[] Rows)>();
        int start = 0;
        for (int j = 0; j < used; j++)
        {
            int count = (blocks / used + (j < blocks % used ? 1 : 0)) * groupSize;
            slices.Add((live[j], Enumerable.Range(start, count).ToArray()));
            start += count;
        }
        return slices;
    }

    /// <summary>Is the spread the one <see cref="Spread"/> would make now (so every group sits in one shard)?</summary>
    private bool LaidOutFor(int groupSize)
    {
        if (Array.IndexOf(_shardOf, null) >= 0) return false;
        var expected = Slices(groupSize);
        var actual = _shards.OrderBy(s => s.Rows[0]).ToList();
        return actual.Count == expected.Count
            && actual.Zip(expected).All(p => p.First.Server == p.Second.Server && p.First.Rows.SequenceEqual(p.Second.Rows));
    }

    /// <summary>A dead server is asked again (health, ready) at most this often.</summary>
    private static readonly TimeSpan ReprobeInterval = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(1);

    private void Probe(IEnumerable<ShardServer> servers)
    {
        var asked = servers.Where(s => DateTime.UtcNow - s.LastProbe >= ReprobeInterval).ToList();
        var answers = FanOut(asked.Select(s => (Func<Wire.HealthMessage>)(() => EnvServerProbe.Health(s.Address, ProbeTimeout, _curve))).ToList());
        for (int i = 0; i < asked.Count; i++)
        {
            asked[i].LastProbe = DateTime.UtcNow;
            if (answers[i].Value is { Ready: true })
            {
                asked[i].Alive = true;
                asked[i].LostReason = null;
                _log?.Invoke($"{asked[i].Address} is back");
            }
        }
    }

    // No live server: one that is restarting (an orchestrator replaces a dead pod in seconds) is better than giving up,
    // so every server is asked until one is ready or the connect timeout has passed.
    private ShardServer? Revive()
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            foreach (var s in _servers) s.LastProbe = DateTime.MinValue;
            Probe(_servers);
            if (LeastLoaded() is { } back) return back;
            if (waited.Elapsed >= _connectTimeout) return null;
            Thread.Sleep(200);
        }
    }

    private RemoteVectorEnv Connect(ShardServer server, int count)
    {
        _sessionsMade++;
        return new RemoteVectorEnv(server.Address, _env, count, _autoreset, _options, _connectTimeout, _stepTimeout, _curve, _heartbeat, failFast: true);
    }

    private Shard Adopt(ShardServer server, RemoteVectorEnv env, int[] rows)
    {
        var spec = env.Spec;
        if (Spec is null)
            Spec = spec with { NumEnvs = _numEnvs };
        else if (spec.Id != Spec.Id || spec.VocabSize != Spec.VocabSize || spec.MaxNewTokens != Spec.MaxNewTokens || !spec.EosIds.SequenceEqual(Spec.EosIds))
        {
            env.Dispose();
            throw new ArgumentException($"{server.Address} serves {spec.Id} (vocab {spec.VocabSize}, budget {spec.MaxNewTokens}), not {Spec.Id} (vocab {Spec.VocabSize}, budget {Spec.MaxNewTokens}) as the other servers do: every server of a sharded env must serve the same env");
        }
        var shard = new Shard(server, env, rows);
        _shards.Add(shard);
        server.SubEnvs += rows.Length;
        foreach (int b in rows) _shardOf[b] = shard;
        return shard;
    }

    private long? ShardSeed(int index) => Offset(_seed, index);

    // A seed for slice or session `index` of this env: seed + index, or none when no seed was given.
    private static long? Offset(long? seed, int index) => seed is { } s ? unchecked(s + index) : null;

    private void SetPrompt(int b, int[] prompt, string id, string text)
    {
        _prompts[b] = prompt;
        _promptIds[b] = id;
        _promptTexts[b] = text;
    }

    private void Copy(Shard shard, StepResult r)
    {
        for (int k = 0; k < shard.Rows.Length; k++)
        {
            int b = shard.Rows[k];
            _result.Rewards[b] = r.Rewards[k];
            _result.Terminated[b] = r.Terminated[k];
            _result.Truncated[b] = r.Truncated[k];
            _result.RefLogProb[b] = r.RefLogProb[k];
            _result.RefEntropy[b] = r.RefEntropy[k];
            _result.SegmentEnded[b] = r.SegmentEnded[k];
            _result.RawRead[b] = r.RawRead[k];
            _result.Episodes[b] = r.Episodes[k];
            _result.ResetPrompts[b] = r.ResetPrompts[k];
            _result.ResetPromptIds[b] = r.ResetPromptIds[k];
            if (r.ResetPrompts[k] is { } prompt) SetPrompt(b, prompt, r.ResetPromptIds[k]!, ""); // a step does not send the text; the next Reset does
        }
    }

    /// <summary>Runs the calls at once, one per server, and returns each one's value or exception (never throws).</summary>
    private static List<(T? Value, Exception? Error)> FanOut<T>(IReadOnlyList<Func<T>> calls)
    {
        if (calls.Count == 1) return [Try(calls[0])];
        var tasks = calls.Select(c => Task.Run(() => Try(c))).ToArray();
        Task.WaitAll(tasks);
        return tasks.Select(t => t.Result).ToList();
    }

    private static (T? Value, Exception? Error) Try<T>(Func<T> call)
    {
        try { return (call(), null); }
        catch (Exception e) { return (default, e); }
    }

    private NoServerLeftException NoServerLeft() => new(
        $"no env server is left for this sharded env: {string.Join("; ", _servers.Select(s => $"{s.Address}: {s.LostReason ?? "alive"}"))}");

    private void CloseAll()
    {
        FanOut(_shards.Select(shard => (Func<bool>)(() =>
        {
            shard.Env.Dispose();
            return true;
        })).ToList());
        foreach (var shard in _shards) shard.Server.SubEnvs -= shard.Rows.Length;
        _shards.Clear();
        Array.Clear(_shardOf);
    }

    public void Dispose()
    {
        _disposed = true;
        CloseAll();
    }
}
