"""Python client for RlhfGym env servers (docs/protocol.md).

Only pyzmq, msgpack and the standard library. Gymnasium-shaped: reset(seed=...) -> (obs, info),
step(actions) -> (obs, rewards, terminated, truncated, info). A gymnasium.Env wrapper for one sub-env is provided
when gymnasium is importable.
"""
import hashlib
import hmac
import itertools

import msgpack
import zmq
import zmq.utils.z85

PROTOCOL_VERSION = "1.0"
NO_ACTION = -1


class RemoteEnvError(RuntimeError):
    """An error reply from the server (code, message), or a timeout."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code


_P = 2 ** 255 - 19


def x25519(scalar, u):
    """RFC 7748 X25519 (Montgomery ladder), pure Python: 32-byte scalar and u-coordinate -> 32 bytes."""
    k = bytearray(scalar)
    k[0] &= 248
    k[31] &= 127
    k[31] |= 64
    k = int.from_bytes(k, "little")
    x1 = int.from_bytes(u, "little") & ((1 << 255) - 1)
    x2, z2, x3, z3, swap = 1, 0, x1, 1, 0
    for t in range(254, -1, -1):
        kt = (k >> t) & 1
        if swap ^ kt:
            x2, x3, z2, z3 = x3, x2, z3, z2
        swap = kt
        a, b, c, d = (x2 + z2) % _P, (x2 - z2) % _P, (x3 + z3) % _P, (x3 - z3) % _P
        aa, bb, da, cb = a * a % _P, b * b % _P, d * a % _P, c * b % _P
        e = (aa - bb) % _P
        x3, z3 = (da + cb) ** 2 % _P, x1 * (da - cb) ** 2 % _P
        x2, z2 = aa * bb % _P, e * (aa + 121665 * e) % _P
    if swap:
        x2, z2 = x3, z3
    return (x2 * pow(z2, _P - 2, _P) % _P).to_bytes(32, "little")


def read_key(key_or_path):
    """A Z85 key given inline, or read from a PREFIX.key / PREFIX.key_secret file (`rlhfgym keys new`)."""
    text = key_or_path
    try:
        with open(key_or_path, encoding="ascii") as f:
            text = next(line.strip() for line in f if line.strip() and not line.startswith("#"))
    except (OSError, StopIteration):
        pass
    text = text.strip()
    if len(text) != 40:
        raise ValueError(f"{key_or_path}: a CurveZMQ key is 40 Z85 characters")
    return text.encode("ascii")


def option_text(value):
    """An env option value as the text the server's options codec reads (docs/env.md, "Options").

    The wire's options are strings. Python's str() writes True as "True"; the codec accepts booleans in any case,
    but this sends the canonical "true"/"false". Numbers use repr(), which round-trips floats exactly ("2.5",
    "1e-05"). Strings (choices such as "segment") are sent as they are.
    """
    if isinstance(value, bool):  # before int: bool is a subclass of int
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def curve_proof(client_secret, server_public):
    """The allow-list proof of docs/protocol.md (Authentication): HMAC-SHA256 keyed by the X25519 shared secret."""
    client_public = x25519(client_secret, bytes([9]) + bytes(31))
    shared = x25519(client_secret, server_public)
    return hmac.new(shared, b"rlhfgym-curve-auth-v1" + client_public + server_public, hashlib.sha256).digest()


class VectorEnv:
    """A batch of text-generation episodes served by `rlhfgym serve`.

    Observations are token ids: reset returns each sub-env's prompt; step returns, per sub-env, the new prompt when the
    env autoreset it this step, else None (the agent keeps its own response tokens).
    """

    def __init__(self, address="tcp://127.0.0.1:5555", env=None, num_envs=1, autoreset="next-step", options=None,
                 connect_timeout=10.0, step_timeout=60.0, server_key=None, client_secret_key=None):
        """options: env options by key (docs/env.md), e.g. {"mode": "segment", "c_ent": 2.5, "dense_as_bandit": True};
        values may be str, bool, int or float (see option_text). An unknown key or a bad value is a RemoteEnvError
        with code invalid_argument naming the key.
        server_key / client_secret_key: for a CurveZMQ server (`rlhfgym serve --curve-secret-key`), its public key
        and this client's secret key, each Z85 text or a key file."""
        self.address = address
        self._ids = itertools.count(1)
        self._step_timeout_ms = int(step_timeout * 1000)
        self._ctx = zmq.Context.instance()
        self._socket = self._ctx.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        auth = {}
        if (server_key is None) != (client_secret_key is None):
            raise ValueError("server_key and client_secret_key go together (CurveZMQ needs both)")
        if server_key is not None:
            server_z85, secret_z85 = read_key(server_key), read_key(client_secret_key)
            self._socket.curve_serverkey = server_z85
            self._socket.curve_secretkey = secret_z85
            self._socket.curve_publickey = zmq.curve_public(secret_z85)
            auth = {"client_key": zmq.curve_public(secret_z85).decode("ascii"),
                    "proof": curve_proof(zmq.utils.z85.decode(secret_z85), zmq.utils.z85.decode(server_z85))}
        self._socket.connect(address)
        hello = self._call({"op": "hello", "client": "rlhfgym-python", **auth}, int(connect_timeout * 1000))
        self.server = hello.get("server")
        self.capabilities = hello.get("capabilities", [])
        made = self._call({"op": "make", "env": env, "num_envs": num_envs, "autoreset": autoreset,
                           "options": {k: option_text(v) for k, v in (options or {}).items()}, **auth}, int(connect_timeout * 1000))
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
