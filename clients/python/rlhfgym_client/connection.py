"""One client's link to `rlhfgym serve`: a DEALER socket, one request in flight, replies matched by id, timeouts,
the server's frame limit checked before sending, and a background heartbeat that keeps the session alive while the
agent is busy elsewhere (a long PyTorch update) and notices when the server no longer knows it.
"""
import itertools
import threading
import time

import msgpack
import zmq
import zmq.utils.z85

from .errors import RemoteEnvError, ServerDraining
from .keys import curve_proof, read_key

PROTOCOL_VERSION = "1.0"


def curve_keys(server_key, client_secret_key):
    """(server public, client secret, client public) Z85 keys for a CURVE socket, or None without keys."""
    if (server_key is None) != (client_secret_key is None):
        raise ValueError("server_key and client_secret_key go together (CurveZMQ needs both)")
    if server_key is None:
        return None
    secret_z85 = read_key(client_secret_key, "secret-key")
    return read_key(server_key, "public-key"), secret_z85, zmq.curve_public(secret_z85)


def open_dealer(address, curve):
    """A DEALER socket connected to `address`, speaking CURVE with the `curve_keys` tuple when it is not None."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        socket.curve_serverkey, socket.curve_secretkey, socket.curve_publickey = curve
    socket.connect(address)
    return socket


def raise_error_reply(reply):
    """An error reply ("ok" false) as the client's exception: ServerDraining for "draining", else RemoteEnvError."""
    error = reply.get("error") or {}
    if error.get("code") == "draining":
        raise ServerDraining(error.get("message", ""))
    raise RemoteEnvError(error.get("code", "error"), error.get("message", ""))


class Connection:
    def __init__(self, address, connect_timeout, step_timeout, server_key=None, client_secret_key=None,
                 client_name="rlhfgym-python"):
        self._curve = curve_keys(server_key, client_secret_key)
        self.address = address
        self.connect_timeout_ms = int(connect_timeout * 1000)
        self.step_timeout_ms = int(step_timeout * 1000)
        self._ids = itertools.count(1)
        self.auth = {}
        if self._curve is not None:
            server_z85, secret_z85, public_z85 = self._curve
            self.auth = {"client_key": public_z85.decode("ascii"),
                         "proof": curve_proof(zmq.utils.z85.decode(secret_z85), zmq.utils.z85.decode(server_z85))}
        self.limits = {}  # until the hello reply announces them
        self._socket = self._open()
        hello = self.call({"op": "hello", "client": client_name, **self.auth}, self.connect_timeout_ms)
        self.server = hello.get("server")
        self.capabilities = hello.get("capabilities") or []
        self.limits = hello.get("limits") or {}
        self.last_activity = time.monotonic()

    def _open(self):
        return open_dealer(self.address, self._curve)

    def call(self, request, timeout_ms):
        """Send one request and return its ok reply; an error reply raises RemoteEnvError with the server's code."""
        request = {k: v for k, v in request.items() if v is not None}
        request["v"] = PROTOCOL_VERSION
        request["id"] = next(self._ids)
        frame = msgpack.packb(request, use_bin_type=True)
        limit = self.limits.get("max_frame_bytes")
        if limit and len(frame) > limit:
            # The server's socket drops a bigger frame unread and never answers: say so now, not after a timeout.
            raise RemoteEnvError("limit_exceeded", f"'{request['op']}' would send a frame of {len(frame)} bytes, over "
                                                   f"{self.address}'s max_frame_bytes of {limit}: split the request")
        self.last_activity = time.monotonic()
        self._socket.send(frame)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0 or not self._socket.poll(left):
                # A fresh socket, so a late reply cannot be read as the answer to a later request.
                self._socket.close(0)
                self._socket = self._open()
                raise RemoteEnvError("timeout", f"no reply to '{request['op']}' from {self.address} within "
                                                f"{timeout_ms / 1000:.0f} s (is `rlhfgym serve` running there?)")
            reply = msgpack.unpackb(self._socket.recv(), raw=False)
            if reply.get("id") != request["id"]:
                continue  # the answer to an earlier, abandoned request
            self.last_activity = time.monotonic()
            if not reply.get("ok"):
                raise_error_reply(reply)
            return reply

    def close(self):
        self._socket.close(0)


class Heartbeat:
    """Pings `session_of()` from its own socket (ZeroMQ sockets belong to one thread) whenever the connection has been
    idle for `interval` seconds. When the server answers unknown_session, `lost` is set; the env raises SessionLost on
    its next call. Stops with stop() (and never keeps the interpreter alive: a daemon thread)."""

    def __init__(self, connection, session_of, interval):
        self._connection = connection
        self._session_of = session_of
        self.interval = interval
        self.lost = None  # the server's message once it said the session is gone
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rlhfgym-heartbeat", daemon=True)
        self._thread.start()

    def _run(self):
        socket = self._connection._open()
        ids = itertools.count(1)
        last_ping = 0.0
        try:
            while not self._stop.wait(self.interval / 4):
                session = self._session_of()
                if session is None or self.lost is not None:
                    continue
                if time.monotonic() - max(self._connection.last_activity, last_ping) < self.interval:
                    continue
                last_ping = time.monotonic()
                request_id = next(ids)
                socket.send(msgpack.packb({"v": PROTOCOL_VERSION, "id": request_id, "op": "ping", "session": session},
                                          use_bin_type=True))
                if not socket.poll(self._connection.connect_timeout_ms):
                    socket.close(0)  # server unreachable for now: try again next beat on a fresh socket
                    socket = self._connection._open()
                    continue
                reply = msgpack.unpackb(socket.recv(), raw=False)
                self.beats += 1
                if not reply.get("ok") and (reply.get("error") or {}).get("code") == "unknown_session" \
                        and self._session_of() == session:
                    self.lost = (reply.get("error") or {}).get("message", "unknown session")
        finally:
            socket.close(0)

    def stop(self):
        self._stop.set()
        self._thread.join(timeout=5)
