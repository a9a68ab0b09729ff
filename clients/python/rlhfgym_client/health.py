"""One `health` request to an env server (docs/protocol.md): readiness, draining, sessions and load, without a session.
What a scheduler, a probe or a sharded rollout asks before it sends work."""
import msgpack
import zmq

from .connection import PROTOCOL_VERSION
from .errors import RemoteEnvError
from .keys import read_key


def health(address, timeout=2.0, server_key=None, client_secret_key=None):
    """The server's health map: ready (bool), draining (bool), sessions, max_sessions, sub_envs, requests (ints),
    uptime_s, busy (floats; busy is the fraction of the last 10 s spent handling requests), env, device (str), error
    (str or None: why the default env cannot load). Raises RemoteEnvError("timeout", ...) when nothing answers within
    `timeout` seconds. A CurveZMQ server needs server_key and client_secret_key (as for VectorEnv); health needs no
    allow-list proof."""
    if (server_key is None) != (client_secret_key is None):
        raise ValueError("server_key and client_secret_key go together (CurveZMQ needs both)")
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be seconds > 0, got {timeout!r}")
    socket = zmq.Context.instance().socket(zmq.DEALER)
    try:
        socket.setsockopt(zmq.LINGER, 0)
        if server_key is not None:
            secret = read_key(client_secret_key, "secret-key")
            socket.curve_serverkey = read_key(server_key, "public-key")
            socket.curve_secretkey = secret
            socket.curve_publickey = zmq.curve_public(secret)
        socket.connect(address)
        socket.send(msgpack.packb({"v": PROTOCOL_VERSION, "id": 1, "op": "health"}, use_bin_type=True))
        if not socket.poll(int(timeout * 1000)):
            raise RemoteEnvError("timeout", f"no reply to 'health' from {address} within {timeout:g} s "
                                            "(is `rlhfgym serve` running there?)")
        reply = msgpack.unpackb(socket.recv(), raw=False)
    finally:
        socket.close(0)
    if not reply.get("ok"):
        error = reply.get("error") or {}
        raise RemoteEnvError(error.get("code", "error"), error.get("message", ""))
    if "health" not in reply:
        raise RemoteEnvError("bad_request", f"{address} answered 'health' without a health map (an older server?)")
    return reply["health"]
