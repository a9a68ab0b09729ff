"""One `health` request to an env server (docs/protocol.md): readiness, draining, sessions and load, without a session.
What a scheduler, a probe or a sharded rollout asks before it sends work."""
import msgpack

from .connection import PROTOCOL_VERSION, curve_keys, open_dealer, raise_error_reply
from .errors import RemoteEnvError


def health(address, timeout=2.0, server_key=None, client_secret_key=None):
    """The server's health map: ready (bool), draining (bool), sessions, max_sessions, sub_envs, requests (ints),
    uptime_s, busy (floats; busy is the fraction of the last 10 s spent handling requests), batched_steps (int: step
    requests that ran in one batched forward with another session's), step_batches (int: those batched forwards, so
    batched_steps / step_batches is their mean size in sessions; absent from an older server), batched_resets (int:
    reset requests prefilled together with another session's), batched_scores (int: score requests scored together
    with another session's), bursts (int: bursts answered, the requests answered together), gather_s, compute_s,
    reply_s (floats: seconds summed over those bursts gathering requests, computing replies and sending them; running
    totals, read as differences between two calls; absent from an older server), env, device (str), error
    (str or None: why the default env cannot load). Raises RemoteEnvError("timeout", ...) when nothing answers within
    `timeout` seconds. A CurveZMQ server needs server_key and client_secret_key (as for VectorEnv); health needs no
    allow-list proof."""
    curve = curve_keys(server_key, client_secret_key)
    if not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be seconds > 0, got {timeout!r}")
    socket = open_dealer(address, curve)
    try:
        socket.send(msgpack.packb({"v": PROTOCOL_VERSION, "id": 1, "op": "health"}, use_bin_type=True))
        if not socket.poll(int(timeout * 1000)):
            raise RemoteEnvError("timeout", f"no reply to 'health' from {address} within {timeout:g} s "
                                            "(is `rlhfgym serve` running there?)")
        reply = msgpack.unpackb(socket.recv(), raw=False)
    finally:
        socket.close(0)
    if not reply.get("ok"):
        raise_error_reply(reply)
    if "health" not in reply:
        raise RemoteEnvError("bad_request", f"{address} answered 'health' without a health map (an older server?)")
    return reply["health"]
