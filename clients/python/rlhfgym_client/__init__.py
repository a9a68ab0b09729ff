"""Python client for RlhfGym env servers (docs/protocol.md).

Only pyzmq, msgpack and the standard library. Gymnasium-shaped: reset(seed=...) -> (obs, info),
step(actions) -> (obs, rewards, terminated, truncated, info). A gymnasium.Env wrapper for one sub-env is provided
when gymnasium is importable.
"""
import itertools

import msgpack
import zmq

PROTOCOL_VERSION = "1.0"
NO_ACTION = -1


class RemoteEnvError(RuntimeError):
    """An error reply from the server (code, message), or a timeout."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


class VectorEnv:
    """A batch of text-generation episodes served by `rlhfgym serve`.

    Observations are token ids: reset returns each sub-env's prompt; step returns, per sub-env, the new prompt when the
    env autoreset it this step, else None (the agent keeps its own response tokens).
    """

    def __init__(self, address="tcp://127.0.0.1:5555", env=None, num_envs=1, autoreset="next-step", options=None,
                 connect_timeout=10.0, step_timeout=60.0):
        self.address = address
        self._ids = itertools.count(1)
        self._step_timeout_ms = int(step_timeout * 1000)
        self._ctx = zmq.Context.instance()
        self._socket = self._ctx.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        self._socket.connect(address)
        hello = self._call({"op": "hello", "client": "rlhfgym-python"}, int(connect_timeout * 1000))
        self.server = hello.get("server")
        self.capabilities = hello.get("capabilities", [])
        made = self._call({"op": "make", "env": env, "num_envs": num_envs, "autoreset": autoreset,
                           "options": {k: str(v) for k, v in (options or {}).items()}}, int(connect_timeout * 1000))
        self.session = made["session"]
        self.spec = made["spec"]
        self.num_envs = self.spec["num_envs"]

    def _call(self, request, timeout_ms):
        request = {k: v for k, v in request.items() if v is not None}
        request["v"] = PROTOCOL_VERSION
        request["id"] = next(self._ids)
        self._socket.send(msgpack.packb(request, use_bin_type=True))
        while True:
            if not self._socket.poll(timeout_ms):
                raise RemoteEnvError("timeout", f"no reply to '{request['op']}' from {self.address} within {timeout_ms / 1000:.0f} s")
            reply = msgpack.unpackb(self._socket.recv(), raw=False)
            if reply.get("id") != request["id"]:
                continue
            if not reply.get("ok"):
                error = reply.get("error") or {}
                raise RemoteEnvError(error.get("code", "error"), error.get("message", ""))
            return reply

    def _session_call(self, request):
        request["session"] = self.session
        return self._call(request, self._step_timeout_ms)

    def reset(self, seed=None, mask=None, group_size=None):
        reply = self._session_call({"op": "reset", "seed": seed, "mask": mask, "group_size": group_size})
        return reply["prompts"], {"prompt_ids": reply["prompt_ids"], "prompt_texts": reply["prompt_texts"]}

    def step(self, actions):
        reply = self._session_call({"op": "step", "actions": [int(a) for a in actions]})
        info = {key: reply[key] for key in ("ref_logprob", "ref_entropy", "segment_ended", "raw_read", "episodes", "reset_prompt_ids")}
        return reply["reset_prompts"], reply["rewards"], reply["terminated"], reply["truncated"], info

    def score(self, prompts, responses):
        return self._session_call({"op": "score", "prompts": prompts, "responses": responses})["episodes"]

    def ping(self):
        self._session_call({"op": "ping"})

    def close(self):
        try:
            self._call({"op": "close", "session": self.session}, 2000)
        except RemoteEnvError:
            pass
        self._socket.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


try:
    import gymnasium

    class GymEnv(gymnasium.Env):
        """One sub-env as a gymnasium.Env: observation = prompt + response so far (token ids)."""

        def __init__(self, **kwargs):
            self._env = VectorEnv(num_envs=1, autoreset="disabled", **kwargs)
            self.action_space = gymnasium.spaces.Discrete(self._env.spec["vocab_size"])
            self._obs = []

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            prompts, info = self._env.reset(seed=seed)
            self._obs = list(prompts[0])
            return self._obs, info

        def step(self, action):
            _, rewards, terminated, truncated, info = self._env.step([action])
            self._obs.append(int(action))
            return self._obs, rewards[0], terminated[0], truncated[0], info

        def close(self):
            self._env.close()
except ImportError:  # gymnasium is optional
    pass
