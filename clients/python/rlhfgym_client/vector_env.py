"""VectorEnv: a batch of text-generation episodes served by `rlhfgym serve`, with Gymnasium's vector-env API.

Observations are token ids: each sub-env's observation is its prompt followed by the response so far, a fresh int64
numpy array every call (never aliased). Actions are token ids, one per sub-env. With gymnasium installed the class
is a real gymnasium.vector.VectorEnv; without it, the same API on plain classes.
"""
import numbers

import numpy as np

from .connection import Connection, Heartbeat
from .episode import Episode
from .errors import RemoteEnvError, SessionLost
from .options import option_text
from .spaces import HAVE_GYMNASIUM, Discrete, MultiDiscrete, Tuple, token_sequence

if HAVE_GYMNASIUM:
    import gymnasium
    _Base = gymnasium.vector.VectorEnv
else:
    _Base = object

NO_ACTION = -1  # the action of a finished sub-env under autoreset="disabled"
_AUTORESET_MODES = {"next-step": "NextStep", "disabled": "Disabled"}  # gymnasium's names


def reset_options(options):
    """reset()'s options as (mask: list of bool or None, group_size: an int if it is an integer of any kind (numpy's
    too, which msgpack cannot pack), else as given, or None); unknown keys are a ValueError."""
    options = dict(options or {})
    unknown = set(options) - {"mask", "group_size"}
    if unknown:
        raise ValueError(f"unknown reset options {sorted(unknown)} (known: mask, group_size)")
    mask = options.get("mask")
    if mask is not None:
        mask = [bool(m) for m in np.asarray(mask).tolist()]
    group = options.get("group_size")
    if isinstance(group, numbers.Integral) and not isinstance(group, (bool, np.bool_)):
        group = int(group)
    return mask, group


class VectorEnv(_Base):
    def __init__(self, address="tcp://127.0.0.1:5555", env=None, num_envs=1, autoreset="next-step", options=None,
                 connect_timeout=10.0, step_timeout=60.0, server_key=None, client_secret_key=None, heartbeat=None,
                 _fail_fast=False):
        if autoreset not in _AUTORESET_MODES:
            raise ValueError(f"autoreset must be 'next-step' or 'disabled', got {autoreset!r}")
        if not isinstance(num_envs, numbers.Integral) or isinstance(num_envs, bool) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        num_envs = int(num_envs)  # a numpy integer too
        if heartbeat not in (None, True, False) and (not isinstance(heartbeat, (int, float)) or heartbeat < 0):
            # Checked before connecting, so a bad value leaves no session behind on the server.
            raise ValueError(f"heartbeat must be None (auto), False/0 (off) or seconds > 0, got {heartbeat!r}")
        mode = _AUTORESET_MODES[autoreset]
        if HAVE_GYMNASIUM and hasattr(gymnasium.vector, "AutoresetMode"):  # gymnasium >= 1.0: the enum
            mode = getattr(gymnasium.vector.AutoresetMode, {"NextStep": "NEXT_STEP", "Disabled": "DISABLED"}[mode], mode)
        self.metadata = {"autoreset_mode": mode}
        self._make_request = {"op": "make", "env": env, "num_envs": num_envs, "autoreset": autoreset,
                              "options": {k: option_text(v) for k, v in (options or {}).items()}}
        # _fail_fast: a shard of a ShardedVectorEnv (see Connection); a failed call is not followed by a ping.
        self._fail_fast = _fail_fast
        self._outcome_unknown = None  # set when a step or reset got no reply (see _changing_call)
        self._closed = False
        self._connection = Connection(address, connect_timeout, step_timeout, server_key, client_secret_key, fail_fast=_fail_fast)
        self.session = None
        self._make_session()
        self.address = address
        self.server = self._connection.server
        self.capabilities = self._connection.capabilities
        self.limits = self._connection.limits
        self.num_envs = self.spec["num_envs"]
        vocab = self.spec["vocab_size"]
        self.single_action_space = Discrete(vocab)
        self.action_space = MultiDiscrete([vocab] * self.num_envs)
        self.single_observation_space = token_sequence(vocab)
        self.observation_space = Tuple([token_sequence(vocab) for _ in range(self.num_envs)])
        self._tokens = [[] for _ in range(self.num_envs)]
        self._done = [False] * self.num_envs
        self.finished_episodes = {}
        self.ref_logprob = np.zeros(self.num_envs, dtype=np.float32)
        self.ref_entropy = np.zeros(self.num_envs, dtype=np.float32)
        self._heartbeat = None
        interval = self._heartbeat_interval(heartbeat)
        if interval:
            self._heartbeat = Heartbeat(self._connection, lambda: self.session, interval)

    def _heartbeat_interval(self, heartbeat):
        if heartbeat is False or heartbeat == 0:
            return None
        if heartbeat is None or heartbeat is True:
            timeout = float(self._connection.limits.get("session_timeout_s") or 60.0)
            return max(0.5, timeout / 4)
        if not isinstance(heartbeat, (int, float)) or heartbeat < 0:
            raise ValueError(f"heartbeat must be None (auto), False/0 (off) or seconds > 0, got {heartbeat!r}")
        return float(heartbeat)

    @property
    def heartbeat_interval(self):
        """Seconds of idleness after which the background heartbeat pings (None: no heartbeat)."""
        return None if self._heartbeat is None else self._heartbeat.interval

    def _make_session(self):
        made = self._connection.call({**self._make_request, **self._connection.auth}, self._connection.connect_timeout_ms)
        self.session = made["session"]
        # The server's spec map, twice: `spec` as in earlier releases, and `server_spec`, which gymnasium.make_vec leaves
        # alone (it sets `spec` to its own EnvSpec).
        if not hasattr(self, "server_spec"):
            self.spec = made["spec"]  # only at the first make: later, gymnasium.make_vec's own EnvSpec stays
        self.server_spec = made["spec"]
        if getattr(self, "_heartbeat", None) is not None:
            self._heartbeat.lost = None

    def _session_call(self, request, timeout_ms=None):
        if self._closed:
            raise RemoteEnvError("closed", f"this env's connection to {self.address} was closed: make a new VectorEnv")
        if self._heartbeat is not None and self._heartbeat.lost is not None:
            self._lose(f"the heartbeat found it gone: {self._heartbeat.lost}")
        if self.session is None:
            raise SessionLost(f"no session at {self.address} (it was lost): call reset()")
        request["session"] = self.session
        try:
            return self._connection.call(request, timeout_ms or self._connection.step_timeout_ms)
        except RemoteEnvError as e:
            if e.code == "unknown_session":
                self._lose(e.message)
            if e.code == "timeout" and request["op"] != "ping" and not self._fail_fast:
                # A restarted server never saw the request (it went into the dead connection): ask the fresh socket
                # whether the session still exists, to tell a restart (SessionLost) from a slow or absent server.
                try:
                    self._connection.call({"op": "ping", "session": self.session}, self._connection.connect_timeout_ms)
                except RemoteEnvError as probe:
                    if probe.code == "unknown_session":
                        self._lose(probe.message)
            raise

    def _changing_call(self, request):
        """A step or reset whose reply never came may have run on the server: remembered, so that step() refuses until
        a full reset()."""
        try:
            return self._session_call(request)
        except RemoteEnvError as e:
            if e.code in ("timeout", "disconnected"):
                self._outcome_unknown = f"an earlier '{request['op']}' got no reply ({e.message})"
            raise

    def _lose(self, why):
        self.session = None
        raise SessionLost(f"the server at {self.address} no longer has this client's session ({why}); "
                          "its episodes are gone: call reset() to get a new session")

    def reset(self, *, seed=None, options=None):
        """Reset every sub-env (or those in options["mask"]); returns (observations, info). options: "mask" (a bool per
        sub-env), "group_size" (consecutive blocks of that many sub-envs share a prompt). After a SessionLost, this
        makes a new session first."""
        mask, group_size = reset_options(options)
        if self._closed:
            raise RemoteEnvError("closed", f"this env's connection to {self.address} was closed: make a new VectorEnv")
        full = mask is None or all(mask)
        lost = self.session is None or (self._heartbeat is not None and self._heartbeat.lost is not None)
        if lost and self._fail_fast and not full:
            # A shard's partial reset cannot start a new session (its first reset must be full): its sharded env moves it.
            raise SessionLost(f"the server at {self.address} no longer has this shard's session; a partial reset cannot "
                              "start a new one")
        if lost:
            self._make_session()
        request = {"op": "reset", "seed": None if seed is None else int(seed), "mask": mask, "group_size": group_size}
        try:
            reply = self._changing_call(request)
        except SessionLost:
            if self._fail_fast and not full:
                raise
            self._make_session()  # found out by this reset: nothing in flight was lost, so start over silently
            reply = self._changing_call(request)
        if full:
            self._outcome_unknown = None  # every sub-env starts afresh
        for i, prompt in enumerate(reply["prompts"]):
            if mask is None or mask[i]:
                self._tokens[i] = list(prompt)
                self._done[i] = False
        self.finished_episodes = {}
        info = {"prompt_ids": np.array(reply["prompt_ids"], dtype=object),
                "prompt_texts": np.array(reply["prompt_texts"], dtype=object)}
        return self._observations(), info

    def step(self, actions):
        """One token per sub-env. Returns (observations, rewards, terminations, truncations, info) as numpy arrays.
        Dense rewards: with the default "episode" delivery a step pays 0 until an episode ends, and the finished
        episodes' per-token rewards are in self.finished_episodes (also info["episode"]); with options
        {"delivery": "online"} each step pays its own reward."""
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be {self.num_envs} integer token ids (shape ({self.num_envs},)), got "
                             f"shape {actions.shape} dtype {actions.dtype}")
        if self._outcome_unknown is not None:
            raise RemoteEnvError("invalid_state", f"{self.address}: {self._outcome_unknown}; the server may have run it, so "
                                                  "its episodes may not be what this client saw: call reset() (every "
                                                  "sub-env) before stepping again")
        reply = self._changing_call({"op": "step", "actions": [int(a) for a in actions]})
        rewards = np.asarray(reply["rewards"], dtype=np.float32)
        terminated = np.asarray(reply["terminated"], dtype=bool)
        truncated = np.asarray(reply["truncated"], dtype=bool)
        for i in range(self.num_envs):
            if reply["reset_prompts"][i] is not None:  # next-step autoreset: this step began a new episode
                self._tokens[i] = list(reply["reset_prompts"][i])
                self._done[i] = False
            elif not self._done[i]:
                self._tokens[i].append(int(actions[i]))
            self._done[i] = self._done[i] or bool(terminated[i]) or bool(truncated[i])
        self.ref_logprob = np.asarray(reply["ref_logprob"], dtype=np.float32)
        self.ref_entropy = np.asarray(reply["ref_entropy"], dtype=np.float32)
        episodes = np.empty(self.num_envs, dtype=object)
        self.finished_episodes = {}
        for i, e in enumerate(reply["episodes"]):
            if e is not None:
                episodes[i] = self.finished_episodes[i] = Episode.from_wire(e)
        reset_ids = np.array(reply["reset_prompt_ids"], dtype=object)
        info = {
            "ref_logprob": self.ref_logprob.copy(),
            "ref_entropy": self.ref_entropy.copy(),
            "segment_ended": np.asarray(reply["segment_ended"], dtype=bool),
            "raw_read": np.asarray(reply["raw_read"], dtype=np.float32),
            "episode": episodes,
            "_episode": np.array([e is not None for e in episodes], dtype=bool),
            "reset_prompt_ids": reset_ids,
            "_reset_prompt_ids": np.array([pid is not None for pid in reset_ids], dtype=bool),
        }
        return self._observations(), rewards, terminated, truncated, info

    def _observations(self):
        return tuple(np.array(tokens, dtype=np.int64) for tokens in self._tokens)

    def score(self, prompts, responses):
        """Rewards for finished (prompt, response) pairs, as Episodes. Each response is read through its first EOS, so
        padded rows are fine. Accepts lists or numpy arrays."""
        as_lists = [[int(t) for t in np.asarray(row).tolist()] for row in prompts]
        responses = [[int(t) for t in np.asarray(row).tolist()] for row in responses]
        reply = self._session_call({"op": "score", "prompts": as_lists, "responses": responses})
        return [Episode.from_wire(e) for e in reply["episodes"]]

    def assets(self):
        """The env's downloadable files: a list of {"name", "size", "sha256"}. "reference/…": the env's reference (SFT)
        model as a complete Hugging Face model folder (config.json, model.safetensors in Llama layout for PhraseWorld,
        tokenizer.json, tokenizer_config.json); and for a word-tokenizer env (PhraseWorld) "word_tokenizer.json", the
        same vocabulary in RlhfGym's JSON ({"tokens": [...]}: the text of id i is tokens[i])."""
        request = {"op": "assets", "env": self._make_request["env"], **self._connection.auth}
        return self._connection.call(request, self._connection.step_timeout_ms)["assets"]

    def download_assets(self, directory):
        """Download every asset into `directory` (chunked under the frame limit, each file checked against its
        SHA-256 and written to a temp name, then renamed). Returns {name: path}. The reference model then loads with
        plain PyTorch or transformers: see clients/python/README.md."""
        import os
        chunk = int(self._connection.limits.get("max_asset_chunk") or 1 << 20)
        paths = {}
        for asset in self.assets():
            parts = asset["name"].split("/")
            if any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
                # A name that would leave `directory` (a server's mistake or malice) is refused before anything is written.
                raise RemoteEnvError("asset_corrupt", f"asset name {asset['name']!r} is not a relative path of plain names: "
                                                      "refused, nothing written")
            path = os.path.join(directory, *parts)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            temp = f"{path}.tmp-{os.getpid()}"
            try:
                self._download(asset, temp, chunk)
            except BaseException:
                if os.path.exists(temp):
                    os.remove(temp)  # nothing half-written is left behind
                raise
            os.replace(temp, path)
            paths[asset["name"]] = path
        return paths

    def _download(self, asset, temp, chunk):
        """One asset into `temp`, in chunks, checked against its announced size and SHA-256."""
        import hashlib
        digest = hashlib.sha256()
        with open(temp, "wb") as f:
            offset = 0
            while offset < asset["size"] or offset == 0:
                reply = self._connection.call({"op": "asset", "env": self._make_request["env"], "name": asset["name"],
                                               "offset": offset, "length": chunk, **self._connection.auth},
                                              self._connection.step_timeout_ms)
                data = reply["data"]
                f.write(data)
                digest.update(data)
                offset += len(data)
                if not data:
                    break
        if digest.hexdigest() != asset["sha256"] or offset != asset["size"]:
            raise RemoteEnvError("asset_corrupt", f"{asset['name']}: got {offset} bytes with SHA-256 {digest.hexdigest()}, "
                                                  f"expected {asset['size']} bytes with {asset['sha256']}")

    def ping(self):
        """Is the session alive? True, or SessionLost (the heartbeat does this in the background)."""
        self._session_call({"op": "ping"}, self._connection.connect_timeout_ms)
        return True

    def close(self, **kwargs):
        self._release(close_session=True)
        self._closed = True

    def _abandon(self):
        """Let go of a session whose server is gone, without the close call that could only time out."""
        self._release(close_session=False)

    def _release(self, close_session):
        if self._heartbeat is not None:
            self._heartbeat.stop()
        try:
            if close_session and self.session is not None:
                self._connection.call({"op": "close", "session": self.session}, 2000)
        except RemoteEnvError:
            pass
        self.session = None
        self._connection.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
