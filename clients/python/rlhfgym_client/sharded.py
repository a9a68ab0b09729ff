"""ShardedVectorEnv: one vector env whose sub-envs are spread over several `rlhfgym serve` processes, with failover.

Sub-envs go to the servers in contiguous slices (one session per server) and every step() fans out to all of them at
once. When a server dies, restarts or drains, the episodes in flight on it end with truncated True and
info["lost"] True (reward 0, no info["episode"]: nothing to learn from), and those sub-envs get a new session on a
remaining server when they are next reset: under next-step autoreset that is the next step, as for any ended episode.
Only when no server is left (after waiting up to connect_timeout for one to come back) does a call raise NoServerLeft.
A full reset() brings back servers that answer `health` as ready again and spreads the sub-envs evenly. The same
contract as the C# RlhfGym.Transport.Client.ShardedVectorEnv (docs/env.md, "Sharded env").
"""
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .episode import Episode
from .errors import NoServerLeft, RemoteEnvError, ServerDraining, SessionLost
from .health import health
from .spaces import Tuple
from .vector_env import NO_ACTION, VectorEnv, reset_options


def _offset_seed(seed, index):
    """A seed for slice or session `index`: seed + index, or None when no seed was given."""
    return None if seed is None else int(seed) + index


_REPROBE_S = 5.0   # a dead server is asked again (health) at most this often
_PROBE_TIMEOUT_S = 1.0


def _is_server_loss(error):
    """A server problem rather than the caller's: these move sub-envs; anything else is raised."""
    return isinstance(error, (SessionLost, ServerDraining)) or (
        isinstance(error, RemoteEnvError) and error.code in ("timeout", "disconnected", "unknown_session"))


class ShardServer:
    """One address of a ShardedVectorEnv and whether new sub-envs may go there."""

    def __init__(self, address):
        self.address = address
        self.alive = True
        self.lost_reason = None  # why it was last given up on
        self.sub_envs = 0
        self.last_probe = float("-inf")

    def __repr__(self):
        return f"ShardServer({self.address!r}, alive={self.alive}, sub_envs={self.sub_envs})"


class _Shard:
    def __init__(self, server, env, rows):
        self.server = server
        self.env = env
        self.rows = rows  # ascending: row k of the session is sub-env rows[k]


class ShardedVectorEnv:
    """Arguments as VectorEnv's, with `addresses` (a list of "tcp://host:port", each serving the same env) in place of
    `address`, and `log`: called with one line when a server is lost or comes back and when sub-envs move."""

    def __init__(self, addresses, env=None, num_envs=1, autoreset="next-step", options=None, connect_timeout=10.0,
                 step_timeout=60.0, server_key=None, client_secret_key=None, heartbeat=None, log=None):
        if isinstance(addresses, str) or not addresses:
            raise ValueError(f"addresses must be a non-empty list of server addresses, got {addresses!r}")
        repeated = [a for a in set(addresses) if list(addresses).count(a) > 1]
        if repeated:
            raise ValueError(f"server address {repeated[0]} is listed twice")
        if not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        if autoreset not in ("next-step", "disabled"):
            raise ValueError(f"autoreset must be 'next-step' or 'disabled', got {autoreset!r}")
        self.servers = [ShardServer(a) for a in addresses]
        self.num_envs = num_envs
        self.autoreset = autoreset
        self._make = dict(env=env, autoreset=autoreset, options=options, connect_timeout=connect_timeout,
                          step_timeout=step_timeout, server_key=server_key, client_secret_key=client_secret_key,
                          heartbeat=heartbeat, _fail_fast=True)
        self._connect_timeout = connect_timeout
        self._server_key = server_key
        self._client_secret_key = client_secret_key
        self._log = log or (lambda line: None)
        self._pool = ThreadPoolExecutor(max_workers=max(1, len(addresses)), thread_name_prefix="rlhfgym-shard")
        self._shards = []
        self._shard_of = [None] * num_envs
        self._ended = [False] * num_envs        # ended at the last step (next-step: this step resets it; disabled: finished)
        self._lost_unreported = [False] * num_envs
        self._prompts = [None] * num_envs
        self._prompt_ids = [None] * num_envs
        self._prompt_texts = [None] * num_envs
        self._tokens = [[] for _ in range(num_envs)]
        self._seed = None        # the last seed reset was given: the base of the seeds of sessions made again after a loss
        self._sessions_made = 0
        self.servers_lost = 0    # servers given up on since the env was made
        self.episodes_lost = 0   # episodes cut short by a lost server (each reported once, info["lost"])
        self.spec = self.server_spec = None  # the servers' spec map, num_envs the sharded total (server_spec: as VectorEnv)
        try:
            self._spread(1)
        except BaseException:
            self.close()
            raise
        self.single_action_space = self._shards[0].env.single_action_space
        self.action_space = type(self._shards[0].env.action_space)([self.spec["vocab_size"]] * num_envs)
        self.single_observation_space = self._shards[0].env.single_observation_space
        self.observation_space = Tuple([self.single_observation_space] * num_envs)
        self.ref_logprob = np.zeros(num_envs, dtype=np.float32)
        self.ref_entropy = np.zeros(num_envs, dtype=np.float32)
        self.finished_episodes = {}

    # ---- the gymnasium vector-env API -------------------------------------------------------------------------------

    def reset(self, *, seed=None, options=None):
        """As VectorEnv.reset. With a seed, server slice j is reset with seed + j (the same prompts again only while the
        spread is the same); without one, each slice's session goes on with its own random stream, as VectorEnv does.
        A group of group_size consecutive sub-envs must sit on one server: a full reset spreads them so; a masked reset of a group split by a failover raises ValueError (reset everything to regroup)."""
        mask, group = reset_options(options)
        if mask is not None and len(mask) != self.num_envs:
            raise ValueError(f"reset mask has {len(mask)} entries, the env has {self.num_envs} sub-envs")
        group = 1 if group is None else group
        if seed is not None:
            self._seed = int(seed)
        full = mask is None or all(mask)
        if not full and any(p is None for p in self._prompts):
            raise RemoteEnvError("invalid_state", "the first reset must reset every sub-env (no mask, or every entry True)")
        rows = [b for b in range(self.num_envs) if mask is None or mask[b]]
        if not isinstance(group, int) or group < 1 or len(rows) % group:
            raise ValueError(f"group_size {group!r} must be an int >= 1 dividing the {len(rows)} sub-envs being reset")
        if full:
            self._probe([s for s in self.servers if not s.alive])
            if not self._laid_out_for(group):
                self._spread(group)
        for g in range(0, len(rows), group):
            if len({id(self._shard_of[b]) for b in rows[g:g + group]}) > 1:
                raise ValueError(f"sub-envs {rows[g]}..{rows[g + group - 1]} (one group of {group}) run on different "
                                 "servers: reset every sub-env to regroup them")
        chosen = set(rows)
        work = []
        for j, shard in enumerate(sorted(self._shards, key=lambda s: s.rows[0])):  # slice j by its first sub-env: seed + j
            local = [b in chosen for b in shard.rows]
            if any(local):
                work.append((shard, j, local))
        outcomes = self._fan_out([
            (lambda shard=shard, j=j, local=local: shard.env.reset(
                seed=_offset_seed(seed, j),
                options={"mask": None if all(local) else local, "group_size": group}))
            for shard, j, local in work])
        callers_error = None
        for (shard, _, _), (value, error) in zip(work, outcomes):
            if error is not None:
                if _is_server_loss(error):
                    self._lose(shard, error)
                elif callers_error is None:
                    callers_error = error  # raised once every other reply is in
                continue
            observations, info = value
            # The server reports every sub-env's prompt id and text, the ones it autoreset included; the observation
            # of a sub-env left running is its prompt and response so far, so only reset ones take theirs as the prompt.
            for k, b in enumerate(shard.rows):
                prompt = list(observations[k]) if b in chosen else self._prompts[b]
                self._set_prompt(b, prompt, info["prompt_ids"][k], info["prompt_texts"][k])
        orphans = [b for b in rows if self._shard_of[b] is None]
        if orphans and callers_error is None:
            self._rehome(orphans, group)
        for b in rows:
            self._ended[b] = False
            self._lost_unreported[b] = False
            self._tokens[b] = list(self._prompts[b])
        if callers_error is not None:
            raise callers_error
        self.finished_episodes = {}
        info = {"prompt_ids": np.array(self._prompt_ids, dtype=object),
                "prompt_texts": np.array(self._prompt_texts, dtype=object)}
        return self._observations(), info

    def step(self, actions):
        """As VectorEnv.step, with info["lost"] (and its mask "_lost"): True where the sub-env's episode was cut short
        because its server was lost."""
        if self._prompts[0] is None:
            raise RemoteEnvError("invalid_state", "call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be {self.num_envs} integer token ids (shape ({self.num_envs},)), got "
                             f"shape {actions.shape} dtype {actions.dtype}")
        vocab = self.spec["vocab_size"]
        # Everything is checked before any server steps: a rejected call must not leave the shards out of step.
        running = False
        for b in range(self.num_envs):
            a = int(actions[b])
            if not -2**31 <= a < 2**31:
                # The server reads every entry as a signed 32-bit integer, an ignored one too (docs/protocol.md).
                raise RemoteEnvError("invalid_argument", f"action of sub-env {b} = {a} does not fit a signed 32-bit integer")
            if self._ended[b] and self.autoreset == "next-step":
                continue
            # The errors a VectorEnv gets from its server for the same actions.
            if self._ended[b]:
                if a != NO_ACTION:
                    raise RemoteEnvError("invalid_state", f"sub-env {b} has finished its episode and autoreset is "
                                                          f"disabled: pass {NO_ACTION} as its action, or reset it")
                continue
            if not 0 <= a < vocab:
                raise RemoteEnvError("invalid_argument", f"action of sub-env {b} must be a token id in 0..{vocab - 1}, got {a}")
            running = True
        if not running and self.autoreset == "disabled":
            raise RemoteEnvError("invalid_state", "every sub-env has finished and autoreset is disabled: call reset()")
        n = self.num_envs
        rewards = np.zeros(n, dtype=np.float32)
        terminated = np.zeros(n, dtype=bool)
        truncated = np.zeros(n, dtype=bool)
        lost = np.zeros(n, dtype=bool)
        ref_logprob = np.zeros(n, dtype=np.float32)
        ref_entropy = np.zeros(n, dtype=np.float32)
        segment_ended = np.zeros(n, dtype=bool)
        raw_read = np.full(n, np.nan, dtype=np.float32)
        episodes = np.empty(n, dtype=object)
        reset_ids = np.empty(n, dtype=object)
        reset_prompts = [None] * n

        shards = list(self._shards)
        outcomes = self._fan_out([
            (lambda shard=shard: shard.env._session_call(
                {"op": "step", "actions": [int(actions[b]) for b in shard.rows]}))
            for shard in shards])
        # Every reply is taken in (losses detached, results copied) before an error that is not a server's loss (a
        # failed forward: internal, invalid_state) is raised, so the other shards' bookkeeping stays right.
        callers_error = None
        for shard, (reply, error) in zip(shards, outcomes):
            if error is not None:
                if _is_server_loss(error):
                    self._lose(shard, error)
                elif callers_error is None:
                    callers_error = error
                continue
            for k, b in enumerate(shard.rows):
                rewards[b] = reply["rewards"][k]
                terminated[b] = reply["terminated"][k]
                truncated[b] = reply["truncated"][k]
                ref_logprob[b] = reply["ref_logprob"][k]
                ref_entropy[b] = reply["ref_entropy"][k]
                segment_ended[b] = reply["segment_ended"][k]
                raw_read[b] = reply["raw_read"][k]
                if reply["episodes"][k] is not None:
                    episodes[b] = Episode.from_wire(reply["episodes"][k])
                if reply["reset_prompts"][k] is not None:
                    reset_prompts[b] = list(reply["reset_prompts"][k])
                    reset_ids[b] = reply["reset_prompt_ids"][k]
                    self._set_prompt(b, reset_prompts[b], reset_ids[b], "")  # a step does not send the text
        for b in range(n):
            if self._lost_unreported[b]:
                self._lost_unreported[b] = False
                lost[b] = truncated[b] = True
                ref_logprob[b] = ref_entropy[b] = np.nan
                self.episodes_lost += 1
        # Under next-step autoreset an orphan's reset step is the step after its episode ended: it gets its session now.
        if self.autoreset == "next-step":
            due = [b for b in range(n) if self._shard_of[b] is None and self._ended[b]]
            if due and callers_error is None:
                try:
                    self._rehome(due, 1)
                    for b in due:
                        reset_prompts[b] = list(self._prompts[b])
                        reset_ids[b] = self._prompt_ids[b]
                except RemoteEnvError as e:
                    if isinstance(e, NoServerLeft):
                        raise
                    callers_error = e  # tried again next step
        for b in range(n):
            if reset_prompts[b] is not None:
                self._tokens[b] = list(reset_prompts[b])
                self._ended[b] = False
            elif not self._ended[b] and not lost[b]:  # a lost sub-env's last token never reached a server
                self._tokens[b].append(int(actions[b]))
            if terminated[b] or truncated[b]:
                self._ended[b] = True
        if callers_error is not None:
            raise callers_error
        self.ref_logprob, self.ref_entropy = ref_logprob, ref_entropy
        self.finished_episodes = {b: episodes[b] for b in range(n) if episodes[b] is not None}
        info = {
            "ref_logprob": ref_logprob.copy(),
            "ref_entropy": ref_entropy.copy(),
            "segment_ended": segment_ended,
            "raw_read": raw_read,
            "episode": episodes,
            "_episode": np.array([e is not None for e in episodes], dtype=bool),
            "reset_prompt_ids": reset_ids,
            "_reset_prompt_ids": np.array([r is not None for r in reset_ids], dtype=bool),
            "lost": lost,
            "_lost": lost.copy(),
        }
        return self._observations(), rewards, terminated, truncated, info

    def score(self, prompts, responses):
        """As VectorEnv.score, on any live server (one lost meanwhile is given up on and the next asked)."""
        return self._on_any_server(lambda env: env.score(prompts, responses))

    def assets(self):
        """As VectorEnv.assets, from any live server (every server serves the same env)."""
        return self._on_any_server(lambda env: env.assets())

    def download_assets(self, directory):
        """As VectorEnv.download_assets, from any live server: {name: path}."""
        return self._on_any_server(lambda env: env.download_assets(directory))

    def _on_any_server(self, call):
        while self._shards:
            shard = self._shards[0]
            try:
                return call(shard.env)
            except RemoteEnvError as e:
                if not _is_server_loss(e):
                    raise
                self._lose(shard, e)
        # No shard holds a session (every one was lost): a live server still answers, through a session of its own.
        while True:
            server = self._least_loaded() or self._revive()
            if server is None:
                raise self._no_server_left()
            try:
                temporary = self._connect(server, 1)
            except RemoteEnvError as e:
                if not _is_server_loss(e):
                    raise
                self._give_up(server, str(e))
                continue
            try:
                return call(temporary)
            except RemoteEnvError as e:
                if not _is_server_loss(e):
                    raise
                self._give_up(server, str(e))
            finally:
                temporary.close()

    def close(self, **kwargs):
        self._close_all()
        self._pool.shutdown(wait=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- failover ---------------------------------------------------------------------------------------------------

    def _lose(self, shard, error):
        """Drop a shard whose server failed (a server loss: every caller sorts its errors first). Its episodes in flight
        are lost: the step under way (or the next one) reports them."""
        self._detach(shard)
        if not isinstance(error, SessionLost):  # a restarted server forgot the session but can take a new one
            self._give_up(shard.server, str(error))
        self._log(f"lost the session at {shard.server.address} ({error}); its {len(shard.rows)} sub-envs move")
        for b in shard.rows:
            if not self._ended[b]:  # an episode in flight
                self._lost_unreported[b] = True

    def _detach(self, shard):
        """Let go of a shard whose server failed: its sub-envs have no session until they are rehomed."""
        self._shards.remove(shard)
        shard.env._abandon()
        shard.server.sub_envs -= len(shard.rows)
        for b in shard.rows:
            self._shard_of[b] = None

    def _give_up(self, server, why):
        if not server.alive:
            return
        server.alive = False
        server.lost_reason = why
        server.last_probe = time.monotonic()
        self.servers_lost += 1

    def _rehome(self, rows, group):
        """New sessions for sub-envs that have none, on the least-loaded live server, reset at once."""
        while True:
            server = self._least_loaded() or self._revive()
            if server is None:
                raise self._no_server_left()
            shard = None
            try:
                shard = self._adopt(server, self._connect(server, len(rows)), rows)
                observations, info = shard.env.reset(seed=self._shard_seed(len(self.servers) + self._sessions_made),
                                                     options={"group_size": group})
            except RemoteEnvError as e:
                if not _is_server_loss(e):
                    raise
                if shard is not None:
                    self._detach(shard)  # made, but its first reset failed
                self._give_up(server, str(e))
                continue
            for k, b in enumerate(rows):
                self._set_prompt(b, list(observations[k]), info["prompt_ids"][k], info["prompt_texts"][k])
            self._log(f"{len(rows)} sub-envs now run at {server.address}")
            return

    def _spread(self, group):
        """Close every session and spread the sub-envs evenly, in contiguous slices of whole groups, over the live
        servers; the caller resets them."""
        self._close_all()
        while True:
            if not any(s.alive for s in self.servers) and self._revive() is None:
                raise self._no_server_left()
            live = [s for s in self.servers if s.alive]
            slices = self._slices(live, group)
            outcomes = self._fan_out([(lambda s=server, r=rows: self._connect(s, len(r))) for server, rows in slices])
            complete = True
            for (server, rows), (env, error) in zip(slices, outcomes):
                if error is not None:
                    if not _is_server_loss(error):
                        self._close_all()
                        raise error
                    self._give_up(server, str(error))
                    complete = False
                else:
                    self._adopt(server, env, rows)
            if complete:
                return
            self._close_all()

    def _slices(self, live, group):
        blocks = self.num_envs // group
        used = min(len(live), blocks)
        slices, start = [], 0
        for j in range(used):
            count = (blocks // used + (1 if j < blocks % used else 0)) * group
            slices.append((live[j], list(range(start, start + count))))
            start += count
        return slices

    def _laid_out_for(self, group):
        if any(s is None for s in self._shard_of):
            return False
        expected = self._slices([s for s in self.servers if s.alive], group)
        actual = sorted(self._shards, key=lambda s: s.rows[0])
        return len(actual) == len(expected) and all(
            shard.server is server and shard.rows == rows for shard, (server, rows) in zip(actual, expected))

    def _probe(self, servers):
        asked = [s for s in servers if time.monotonic() - s.last_probe >= _REPROBE_S]
        answers = self._fan_out([(lambda s=s: health(s.address, timeout=_PROBE_TIMEOUT_S, server_key=self._server_key,
                                                 client_secret_key=self._client_secret_key))
                                 for s in asked])
        for server, (answer, _) in zip(asked, answers):
            server.last_probe = time.monotonic()
            if answer is not None and answer.get("ready"):
                server.alive = True
                server.lost_reason = None
                self._log(f"{server.address} is back")

    def _revive(self):
        """No live server: one that is restarting is better than giving up, so ask every server until one is ready or
        the connect timeout has passed."""
        started = time.monotonic()
        while True:
            for s in self.servers:
                s.last_probe = float("-inf")
            self._probe(self.servers)
            server = self._least_loaded()
            if server is not None or time.monotonic() - started >= self._connect_timeout:
                return server
            time.sleep(0.2)

    def _least_loaded(self):
        live = [s for s in self.servers if s.alive]
        return min(live, key=lambda s: s.sub_envs) if live else None

    def _connect(self, server, count):
        self._sessions_made += 1
        return VectorEnv(server.address, num_envs=count, **self._make)

    def _adopt(self, server, env, rows):
        spec = env.spec
        if self.spec is None:
            self.spec = self.server_spec = dict(spec, num_envs=self.num_envs)
        elif any(spec[k] != self.spec[k] for k in ("id", "vocab_size", "max_new_tokens", "eos_ids")):
            env.close()
            raise ValueError(f"{server.address} serves {spec['id']} (vocab {spec['vocab_size']}, budget "
                             f"{spec['max_new_tokens']}), not {self.spec['id']} (vocab {self.spec['vocab_size']}, budget "
                             f"{self.spec['max_new_tokens']}) as the other servers do: every server of a sharded env "
                             "must serve the same env")
        shard = _Shard(server, env, rows)
        self._shards.append(shard)
        server.sub_envs += len(rows)
        for b in rows:
            self._shard_of[b] = shard
        return shard

    def _shard_seed(self, index):
        return _offset_seed(self._seed, index)

    def _set_prompt(self, b, prompt, prompt_id, text):
        self._prompts[b], self._prompt_ids[b], self._prompt_texts[b] = prompt, prompt_id, text

    def _observations(self):
        return tuple(np.array(tokens, dtype=np.int64) for tokens in self._tokens)

    def _fan_out(self, calls):
        """Run the calls at once, one per server; each one's (value, None) or (None, exception)."""
        def attempt(call):
            try:
                return call(), None
            except Exception as e:  # noqa: BLE001 - classified by the caller
                return None, e
        if len(calls) <= 1:
            return [attempt(c) for c in calls]
        return list(self._pool.map(attempt, calls))

    def _no_server_left(self):
        return NoServerLeft("no env server is left for this sharded env: " + "; ".join(
            f"{s.address}: {s.lost_reason or 'alive'}" for s in self.servers))

    def _close_all(self):
        shards, self._shards = self._shards, []
        self._fan_out([(lambda s=s: s.env.close()) for s in shards])
        for s in shards:
            s.server.sub_envs -= len(s.rows)
        self._shard_of = [None] * self.num_envs
