using RlhfGym.Env.Bundles;
using RlhfGym.Env.Common;
using RlhfGym.Env.Judging;
using RlhfGym.Env.Normalization;
using RlhfGym.Env.Rewards;
using RlhfGym.Models;
using static TorchSharp.torch;

namespace RlhfGym.Env.Core;

/// <summary>
/// The text-generation vector env over an env bundle. Each sub-env's episode is one response to one prompt; an action
/// is the next token. Every step advances the frozen reference LM and the reward model by one token through their KV
/// caches (never recomputing a prefix), reads the reference's next-token entropy and log π_ref(token), and the RM's
/// value at that token; rewards follow the env's options (<see cref="RewardAssembler"/>). The models and caches live in
/// an <see cref="EnvDecoder"/>: the env's own, or one shared with other envs (a server's sessions), which
/// <see cref="StepTogether"/> steps as one batch.
/// </summary>
public sealed class TextVectorEnv : IVectorEnv, IScoringEnv
{
    public EnvSpec Spec { get; }
    public EnvBundle Bundle { get; }
    public Device Device { get; }

    private readonly EnvOptions _o;
    private readonly RewardNormalizer _normalizer;
    private readonly IEpisodeJudge? _judge;
    private readonly IReadOnlyList<BundlePrompt> _pool;
    private readonly int _b, _budget, _capacity, _eos, _vocab;
    private readonly bool[] _isEos; // by token id: does it end a response (eos_token, a chat model's end of turn)
    private readonly EnvDecoder _decoder;
    private readonly bool _ownsDecoder;
    private readonly int[] _rows;          // the decoder's row of each sub-env
    private readonly int[][] _rowSet;      // { _rows }, for stepping alone
    private readonly int[] _actions;       // this step's actions, between PrepareStep and FinishStep
    private readonly StepResult _result;
    private bool _disposed;
    private const int ScoreBatch = 64;

    // Per sub-env episode state (host).
    private readonly BundlePrompt?[] _prompt;
    private readonly int[][] _response;
    private readonly float[][] _entropy, _logProb, _value;
    private readonly int[] _length;
    private readonly bool[] _finished, _resetNext;
    private SeededRandom? _rng;

    /// <param name="parallelModels">Step the reference LM and the reward model at once, one per core
    /// (<see cref="InferenceLanes"/>); null: on a CPU with two or more threads unless RLHFGYM_INFERENCE_LANES=0. Results
    /// agree with one-after-the-other stepping to fp32 rounding (about 1e-6). Ignored with <paramref name="shared"/>.</param>
    /// <param name="shared">Take rows of a decoder shared with other envs on the same bundle and cache capacity (a
    /// server's sessions); null: the env loads its own models.</param>
    public TextVectorEnv(EnvBundle bundle, int numEnvs, EnvOptions? options = null, AutoresetMode autoreset = AutoresetMode.NextStep,
        Device? device = null, string? id = null, bool? parallelModels = null, EnvDecoders? shared = null)
    {
        if (numEnvs <= 0) throw new ArgumentOutOfRangeException(nameof(numEnvs), numEnvs, "number of envs must be > 0");
        _o = options ?? bundle.Defaults;
        _o.Validate();
        Bundle = bundle;
        Device = device ?? CPU;
        _normalizer = bundle.Normalizers[_o.Normalizer];
        _pool = bundle.Prompts.Where(p => p.Split == _o.PromptSplit).ToList();
        if (_pool.Count == 0) throw new ArgumentException($"the bundle has no '{_o.PromptSplit}' prompts");
        _b = numEnvs;
        _budget = _o.MaxNewTokens;
        _eos = bundle.EosIds[0];
        _vocab = bundle.VocabSize;
        _isEos = new bool[_vocab];
        foreach (int eosId in bundle.EosIds) _isEos[eosId] = true;
        // In long: a max_new_tokens near int.MaxValue must be refused here, not wrap around and pass.
        int longestPrompt = _pool.Max(p => p.Tokens.Length);
        if ((long)longestPrompt + _budget + 1 > bundle.MaxSequenceLength)
            throw new ArgumentException($"prompts of up to {longestPrompt} tokens plus max_new_tokens {_budget} plus 1 exceed the models' max_seq_len {bundle.MaxSequenceLength}");
        _capacity = longestPrompt + _budget + 1;
        Spec = new EnvSpec(id ?? bundle.Name, numEnvs, _vocab, bundle.EosIds, bundle.PadId, _budget, autoreset, _o)
        {
            MaxSequenceLength = bundle.MaxSequenceLength,
        };
        _judge = bundle.Judge;
        _ownsDecoder = shared is null;
        _decoder = shared?.For(bundle, _capacity, Device) ?? new EnvDecoder(bundle, _capacity, Device, parallelModels);
        _rows = _decoder.Attach(_b);
        _rowSet = [_rows];
        _actions = new int[_b];
        _result = new StepResult(_b);
        _prompt = new BundlePrompt?[_b];
        _response = Enumerable.Range(0, _b).Select(_ => new int[_budget]).ToArray();
        _entropy = Enumerable.Range(0, _b).Select(_ => new float[_budget]).ToArray();
        _logProb = Enumerable.Range(0, _b).Select(_ => new float[_budget]).ToArray();
        _value = Enumerable.Range(0, _b).Select(_ => new float[_budget]).ToArray();
        _length = new int[_b];
        _finished = new bool[_b];
        _resetNext = new bool[_b];
    }

    public EnvOptions Options => _o;

    /// <summary>The decoder the env steps through; envs with the same one can be stepped together.</summary>
    public EnvDecoder Decoder => _decoder;

    public ResetResult Reset(long? seed = null, ResetOptions? options = null)
    {
        var (rows, all) = StartEpisodes(seed, options);
        Prefill(rows, all);
        return CurrentPrompts();
    }

    /// <summary>
    /// Resets several envs that share one decoder (a server's sessions), each with its own seed and options, and prefills
    /// all their new prompts in one forward. Each env gets what its <see cref="Reset"/> would give (to fp32 rounding in the
    /// caches: rows may share a padded batch). A reset that is rejected gets its error and leaves that env as it was; the
    /// others reset. Each env may appear once.
    /// </summary>
    public static IReadOnlyList<(ResetResult? Result, Exception? Error)> ResetTogether(IReadOnlyList<(TextVectorEnv Env, long? Seed, ResetOptions? Options)> resets)
    {
        var outcomes = new (ResetResult?, Exception?)[resets.Count];
        if (resets.Count == 0) return outcomes;
        var decoder = SharedDecoder(resets.Select(r => r.Env).ToList(), "reset", eachOnce: true);
        var ready = new List<int>(resets.Count);
        var prefills = new List<(int Row, int[] Prompt)>();
        for (int i = 0; i < resets.Count; i++)
        {
            var env = resets[i].Env;
            try
            {
                var (rows, _) = env.StartEpisodes(resets[i].Seed, resets[i].Options);
                foreach (int b in rows) prefills.Add((env._rows[b], env._prompt[b]!.Tokens));
                ready.Add(i);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException) { outcomes[i] = (null, e); }
        }
        foreach (int i in ready) outcomes[i] = (resets[i].Env.CurrentPrompts(), null);
        PrefillTogether(decoder, prefills, ready, i => resets[i].Env, outcomes);
        return outcomes;
    }

    // Validate a reset, then start its episodes (seed, prompts); the caller prefills the returned sub-envs. A rejected
    // reset changes nothing.
    private (int[] Rows, bool All) StartEpisodes(long? seed, ResetOptions? options)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var mask = options?.Mask;
        if (mask is not null && mask.Length != _b) throw new ArgumentException($"reset mask has {mask.Length} entries, the env has {_b} sub-envs");
        bool all = mask is null || mask.All(m => m);
        if (!all && _prompt.Any(p => p is null)) throw new InvalidOperationException("the first Reset must reset every sub-env (no mask, or every entry true)");
        var rows = Enumerable.Range(0, _b).Where(b => mask is null || mask[b]).ToArray();
        int group = options?.GroupSize ?? 1;
        if (group < 1 || rows.Length % group != 0)
            throw new ArgumentException($"group size {group} must be >= 1 and divide the {rows.Length} sub-envs being reset");
        if (seed is { } s) _rng = new SeededRandom(s);
        _rng ??= new SeededRandom(Environment.TickCount64);
        BundlePrompt? shared = null;
        for (int i = 0; i < rows.Length; i++)
        {
            if (i % group == 0) shared = _rng.Pick(_pool);
            StartEpisode(rows[i], shared!);
        }
        return (rows, all);
    }

    private ResetResult CurrentPrompts() =>
        new(_prompt.Select(p => p!.Tokens).ToArray(), _prompt.Select(p => p!.Id).ToArray(), _prompt.Select(p => p!.Text).ToArray());

    public StepResult Step(ReadOnlySpan<int> actions)
    {
        PrepareStep(actions);
        _decoder.Advance(_rowSet);
        return FinishStep();
    }

    /// <summary>
    /// Steps several envs that share one decoder (a server's sessions) as one batched forward of the reference LM and
    /// the reward model. Each env's result is its own, under its own options, as if it had stepped alone (to fp32
    /// rounding: a batch of more rows may sum in another order). An env whose actions are rejected gets its error and
    /// is left as it was; the others step. Each env may appear once.
    /// </summary>
    public static IReadOnlyList<(StepResult? Result, Exception? Error)> StepTogether(IReadOnlyList<(TextVectorEnv Env, int[] Actions)> steps)
    {
        var outcomes = new (StepResult?, Exception?)[steps.Count];
        if (steps.Count == 0) return outcomes;
        var decoder = SharedDecoder(steps.Select(s => s.Env).ToList(), "stepped", eachOnce: true);
        var ready = new List<int>(steps.Count);
        for (int i = 0; i < steps.Count; i++)
        {
            try
            {
                steps[i].Env.PrepareStep(steps[i].Actions);
                ready.Add(i);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException) { outcomes[i] = (null, e); }
        }
        decoder.Advance(ready.Select(i => steps[i].Env._rows).ToList());
        // The envs' new episodes (next-step autoreset) are prefilled together too: one forward, not one per env.
        var prefills = new List<(int Row, int[] Prompt)>();
        foreach (int i in ready)
        {
            try { outcomes[i] = (steps[i].Env.FinishStep(prefills), null); }
            catch (Exception e) { outcomes[i] = (null, e); }
        }
        PrefillTogether(decoder, prefills, ready, i => steps[i].Env, outcomes);
        return outcomes;
    }

    // Prefill the new episodes (pool row, prompt) of the ready requests' envs in one forward. If it fails, each request
    // whose env has a row in it gets the error as its outcome.
    private static void PrefillTogether<T>(EnvDecoder decoder, List<(int Row, int[] Prompt)> prefills, List<int> ready,
        Func<int, TextVectorEnv> envOf, (T?, Exception?)[] outcomes)
    {
        if (prefills.Count == 0) return;
        try { decoder.Prefill(prefills.Select(p => p.Row).ToArray(), prefills.Select(p => p.Prompt).ToList(), whole: false); }
        catch (Exception e)
        {
            var rows = prefills.Select(p => p.Row).ToHashSet();
            foreach (int i in ready)
                if (envOf(i)._rows.Any(rows.Contains)) outcomes[i] = (default, e);
        }
    }

    // The decoder that envs handled together share (one forward runs them all); each env at most once where it changes.
    private static EnvDecoder SharedDecoder(List<TextVectorEnv> envs, string how, bool eachOnce)
    {
        var decoder = envs[0]._decoder;
        if (envs.Any(e => e._decoder != decoder)) throw new ArgumentException($"envs {how} together must share one decoder (EnvDecoders)");
        if (eachOnce && envs.Distinct().Count() != envs.Count) throw new ArgumentException($"an env can appear once among the envs {how} together");
        return decoder;
    }

    // Validate the actions and feed them to the decoder; nothing else changes, so a rejected step leaves the env as it was.
    private void PrepareStep(ReadOnlySpan<int> actions)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_rng is null) throw new InvalidOperationException("call Reset before Step");
        if (actions.Length != _b) throw new ArgumentException($"expected {_b} actions (one per sub-env), got {actions.Length}");
        // Validate everything before changing anything: a rejected call leaves the env as it was.
        bool anyRunning = false;
        for (int b = 0; b < _b; b++)
        {
            int a = actions[b];
            if (_resetNext[b]) continue; // next-step autoreset: this sub-env's action is ignored
            if (_finished[b])
            {
                if (a != EnvSpec.NoAction)
                    throw new InvalidOperationException($"sub-env {b} has finished its episode and autoreset is disabled: pass {EnvSpec.NoAction} as its action, or Reset it");
                continue;
            }
            if (a < 0 || a >= _vocab) throw new ArgumentOutOfRangeException(nameof(actions), a, $"action of sub-env {b} must be a token id in 0..{_vocab - 1}");
            if (_decoder.FailedForward(_rows[b]) is { } failure)
                throw new InvalidOperationException($"sub-env {b} cannot step: an earlier forward failed ({failure}) and may have left its KV caches half-written; Reset it (a masked reset of the sub-envs it names is enough)");
            anyRunning = true;
        }
        if (!anyRunning && Array.IndexOf(_resetNext, true) < 0) throw new InvalidOperationException("every sub-env has finished and autoreset is disabled: call Reset");

        var feed = _decoder.Feed;
        var rewardFeed = _decoder.RewardFeed;
        for (int b = 0; b < _b; b++)
        {
            bool running = !_finished[b] && !_resetNext[b];
            int row = _rows[b];
            feed[row] = running ? actions[b] : _eos;
            bool lastToken = running && _length[b] + 1 == _budget && !_isEos[actions[b]];
            rewardFeed[row] = lastToken && RewardAssembler.OverwritesLastToken(_o, false) ? _eos : feed[row];
        }
        actions.CopyTo(_actions);
    }

    // Read this step's numbers from the decoder: rewards, finished episodes, and the next-step resets. The new episodes'
    // prompts are prefilled here, or added to `prefills` for the caller to prefill with other envs' (StepTogether).
    private StepResult FinishStep(List<(int Row, int[] Prompt)>? prefills = null)
    {
        _result.Clear();
        for (int b = 0; b < _b; b++)
            if (!_finished[b] && !_resetNext[b]) Record(b, _actions[b]);

        int[]? resetRows = Array.IndexOf(_resetNext, true) >= 0 ? Enumerable.Range(0, _b).Where(b => _resetNext[b]).ToArray() : null;
        foreach (int b in resetRows ?? [])
        {
            StartEpisode(b, _rng!.Pick(_pool));
            _result.ResetPrompts[b] = _prompt[b]!.Tokens;
            _result.ResetPromptIds[b] = _prompt[b]!.Id;
            prefills?.Add((_rows[b], _prompt[b]!.Tokens));
        }
        // Marked before the prefill: if it fails, the sub-envs whose episode ended this step still start theirs on the
        // next step, instead of refusing tokens as if autoreset were disabled.
        for (int b = 0; b < _b; b++)
            if (_result.Episodes[b] is not null && Spec.Autoreset == AutoresetMode.NextStep) _resetNext[b] = true;
        if (resetRows is not null && prefills is null) Prefill(resetRows, all: false);
        KeepFinishedRowsBounded();
        return _result;
    }

    private void Record(int b, int action)
    {
        int j = _length[b];
        int row = _rows[b];
        float logProb = _decoder.LogProb(row), entropy = _decoder.Entropy(row), value = _decoder.Value(row);
        _response[b][j] = action;
        _logProb[b][j] = logProb;
        _entropy[b][j] = entropy;
        _value[b][j] = value;
        _length[b] = j + 1;
        _result.RefLogProb[b] = logProb;
        _result.RefEntropy[b] = entropy;
        bool terminated = _isEos[action], truncated = !terminated && j + 1 == _budget;
        if (!terminated && !truncated)
        {
            // A dense segment closes here when the rule cuts after this token (Online delivery pays it now).
            if (RewardAssembler.CutByRule(_o, entropy) && !_o.DenseAsBandit)
            {
                _result.SegmentEnded[b] = true;
                _result.RawRead[b] = value;
                if (_o.Delivery == RewardDelivery.Online) _result.Rewards[b] = RewardAssembler.OnlineReward(_o, _normalizer, value, j);
            }
            return;
        }
        var episode = Finish(b, truncated);
        _result.Terminated[b] = terminated;
        _result.Truncated[b] = truncated;
        _result.Episodes[b] = episode;
        _result.Rewards[b] = _o.Delivery == RewardDelivery.Episode ? (float)episode.Total : episode.Online[^1];
        if (RewardAssembler.LastSegmentClosesAtEnd(_o, episode))
        {
            _result.SegmentEnded[b] = true;
            _result.RawRead[b] = (float)episode.RawSegmentRewards[^1];
        }
        _finished[b] = true;
    }

    private EpisodeRewards Finish(int b, bool truncated)
    {
        int t = _length[b];
        var response = _response[b][..t];
        var episode = RewardAssembler.Assemble(_o, _normalizer, response, _entropy[b][..t], _logProb[b][..t], _value[b][..t], EosOf(response), truncated);
        if (_judge is not null) episode = episode with { Gold = _judge.Judge(_prompt[b]!.Id, response).Score };
        return episode;
    }

    private void StartEpisode(int b, BundlePrompt prompt)
    {
        _prompt[b] = prompt;
        _length[b] = 0;
        _finished[b] = false;
        _resetNext[b] = false;
    }

    // Prefill both caches for the given sub-envs (all at once on a full reset) and set their first-token log-probs.
    private void Prefill(int[] subEnvs, bool all)
    {
        if (subEnvs.Length == 0) return;
        var rows = new int[subEnvs.Length];
        var prompts = new int[subEnvs.Length][];
        for (int i = 0; i < subEnvs.Length; i++)
        {
            rows[i] = _rows[subEnvs[i]];
            prompts[i] = _prompt[subEnvs[i]]!.Tokens;
        }
        _decoder.Prefill(rows, prompts, all);
    }

    // Finished rows under disabled autoreset are still fed a token each step (the batch moves together); put their
    // caches back to the prompt before they could outgrow the capacity.
    private void KeepFinishedRowsBounded()
    {
        if (_decoder.LongestOf(_rows) < _capacity - 1) return;
        var rows = Enumerable.Range(0, _b).Where(b => _finished[b] && !_resetNext[b]).ToArray();
        if (rows.Length > 0) Prefill(rows, all: false);
    }

    public IReadOnlyList<EpisodeRewards> Score(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses) =>
        _decoder.Scoring.Score(ScoreRows(prompts, responses), _o, _normalizer, Bundle.EosIds, ScoreBatch);

    /// <summary>
    /// Scores the pairs of several envs that share one decoder (a server's sessions) in the same full forwards of the
    /// reference LM and the reward model; each env's rewards are assembled under its own options, as its
    /// <see cref="Score"/> would (to fp32 rounding: a row may share a padded batch with other envs' rows). A request whose
    /// pairs are rejected gets its error; the others are scored. Scoring changes no env, so an env may appear more than once.
    /// </summary>
    public static IReadOnlyList<(IReadOnlyList<EpisodeRewards>? Result, Exception? Error)> ScoreTogether(
        IReadOnlyList<(TextVectorEnv Env, IReadOnlyList<int[]> Prompts, IReadOnlyList<int[]> Responses)> requests)
    {
        var outcomes = new (IReadOnlyList<EpisodeRewards>?, Exception?)[requests.Count];
        if (requests.Count == 0) return outcomes;
        var decoder = SharedDecoder(requests.Select(r => r.Env).ToList(), "scored", eachOnce: false);
        var ready = new List<int>(requests.Count);
        var jobs = new List<ScoreJob>(requests.Count);
        for (int i = 0; i < requests.Count; i++)
        {
            var (env, prompts, responses) = requests[i];
            try
            {
                jobs.Add(new ScoreJob(env.ScoreRows(prompts, responses), env._o, env._normalizer));
                ready.Add(i);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException) { outcomes[i] = (null, e); }
        }
        // ScoreRows has checked everything a request can get wrong; a failure past it (out of memory) is the whole batch's.
        var scored = decoder.Scoring.ScoreTogether(jobs, decoder.Bundle.EosIds, ScoreBatch);
        for (int j = 0; j < ready.Count; j++) outcomes[ready[j]] = (scored[j], null);
        return outcomes;
    }

    // The pairs as the pipeline reads them, each response through its first EOS; throws on a pair the env cannot score.
    private List<(int[] Prompt, int[] Response)> ScoreRows(IReadOnlyList<int[]> prompts, IReadOnlyList<int[]> responses)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (prompts.Count != responses.Count) throw new ArgumentException($"{prompts.Count} prompts but {responses.Count} responses");
        var cut = new int[responses.Count][];
        for (int i = 0; i < responses.Count; i++)
        {
            if (prompts[i].Length == 0) throw new ArgumentException($"prompt {i} is empty");
            // A response is read through its first EOS, as a rollout would have ended there: what follows it (padding
            // from a batched generator) is ignored, so [5, 9, EOS, 0, 0] scores exactly as [5, 9, EOS].
            cut[i] = ThroughFirstEos(responses[i]);
            if (cut[i].Length == 0) throw new ArgumentException($"response {i} is empty");
            if (cut[i].Length > _budget) throw new ArgumentException($"response {i} has {cut[i].Length} tokens through its first EOS (the EOS counts, as in a rollout), more than max_new_tokens {_budget}");
            if (prompts[i].Length + cut[i].Length > _decoder.MaxSequence)
                throw new ArgumentException($"pair {i}: prompt ({prompts[i].Length} tokens) + response ({cut[i].Length}) is longer than the models' max_seq_len {_decoder.MaxSequence}");
            foreach (var tok in prompts[i].Concat(cut[i]))
                if (tok < 0 || tok >= _vocab) throw new ArgumentOutOfRangeException(nameof(responses), tok, $"pair {i}: token id must be in 0..{_vocab - 1}");
        }
        return prompts.Zip(cut).ToList();
    }

    private int[] ThroughFirstEos(int[] response)
    {
        for (int t = 0; t < response.Length; t++)
            if ((uint)response[t] < (uint)_vocab && _isEos[response[t]])
                return t == response.Length - 1 ? response : response[..(t + 1)];
        return response;
    }

    // The EOS id a response ended with (any of the bundle's), else the primary one.
    private int EosOf(int[] response) => response.Length > 0 && _isEos[response[^1]] ? response[^1] : _eos;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _decoder.Detach(_rows);
        if (_ownsDecoder) _decoder.Dispose();
    }
}
