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


def open_dealer(address, curve, before_connect=None):
    """A DEALER socket connected to `address`, speaking CURVE with the `curve_keys` tuple when it is not None.
    `before_connect(socket)` runs before it connects (a ConnectionWatch attaches there)."""
    socket = zmq.Context.instance().socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    if curve is not None:
        socket.curve_serverkey, socket.curve_secretkey, socket.curve_publickey = curve
    if before_connect is not None:
        before_connect(socket)
    socket.connect(address)
    return socket


class ConnectionWatch:
    """Watches one socket's TCP connection through ZeroMQ's socket monitor, so that a call waiting for a reply learns
    at once that the server went away (its process died; ZeroMQ's heartbeat closes a connection to a machine that
    vanished) instead of waiting out the step timeout. A reply never comes over a connection that dropped after the
    request went out. Attach before the socket connects."""

    _EVENTS = zmq.EVENT_CONNECTED | zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED

    def __init__(self, socket):
        # ZeroMQ's heartbeat closes a connection whose peer stopped answering (no FIN from a machine that is gone).
        socket.setsockopt(zmq.HEARTBEAT_IVL, 1000)
        socket.setsockopt(zmq.HEARTBEAT_TIMEOUT, 5000)
        self._socket = socket
        self.monitor = socket.get_monitor_socket(self._EVENTS)
        self.connected = False
        self.drops = 0
        self.refusals = 0
        self.down_since = time.monotonic()
        self._drops_at_reply = 0

    def read_events(self):
        """Apply every event the monitor has queued."""
        from zmq.utils.monitor import recv_monitor_message
        while self.monitor.poll(0):
            event = recv_monitor_message(self.monitor)["event"]
            if event == zmq.EVENT_CONNECTED:
                self.connected = True
            elif event == zmq.EVENT_DISCONNECTED:
                self.connected = False
                self.drops += 1
                self.down_since = time.monotonic()
            elif event == zmq.EVENT_CONNECT_RETRIED:
                self.refusals += 1

    def down_for(self):
        return 0.0 if self.connected else time.monotonic() - self.down_since

    def saw_reply(self):
        """A reply arrived: the connection is up, whatever the monitor has said so far."""
        self.read_events()
        self.connected = True
        self._drops_at_reply = self.drops

    def lost(self, drops_at_send, grace):
        """Why a request sent when `drops` was drops_at_send can no longer be answered, or None while it still can: the
        connection that carried it dropped; or it dropped since the last reply and is still down (the request waits
        for a server that is gone); or connecting has been refused for longer than `grace` seconds."""
        self.read_events()
        if self.drops != drops_at_send or (self.drops != self._drops_at_reply and not self.connected):
            return "the connection dropped while the request waited for its reply (the server process died or restarted)"
        if not self.connected and self.refusals > 0 and self.down_for() > grace:
            return f"no connection for {grace:g} s (the server is down)"
        return None

    def close(self):
        """Stop monitoring, then close the monitor socket; the caller closes the watched socket after. In this order
        only: a monitor socket closed first leaves ZeroMQ's I/O thread blocked on the next event, which stalls every
        socket of the context (libzmq issue 3575)."""
        self._socket.disable_monitor()
        self.monitor.close(0)


def raise_error_reply(reply):
    """An error reply ("ok" false) as the client's exception: ServerDraining for "draining", else RemoteEnvError."""
    error = reply.get("error") or {}
    if error.get("code") == "draining":
        raise ServerDraining(error.get("message", ""))
    raise RemoteEnvError(error.get("code", "error"), error.get("message", ""))


class Connection:
    def __init__(self, address, connect_timeout, step_timeout, server_key=None, client_secret_key=None,
                 client_name="rlhfgym-python", fail_fast=False):
        """fail_fast: a shard of a ShardedVectorEnv: a dropped connection fails the waiting call at once (code
        "disconnected", ConnectionWatch) instead of after the step timeout."""
        self._curve = curve_keys(server_key, client_secret_key)
        self._fail_fast = fail_fast
        self._watch = None
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
        self._socket = self._open_watched()
        hello = self.call({"op": "hello", "client": client_name, **self.auth}, self.connect_timeout_ms)
        self.server = hello.get("server")
        self.capabilities = hello.get("capabilities") or []
        self.limits = hello.get("limits") or {}
        self.last_activity = time.monotonic()

    def _open(self):
        return open_dealer(self.address, self._curve)

    def _close_socket(self):
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        self._socket.close(0)

    def _reopen(self):
        self._close_socket()
        self._socket = self._open_watched()

    def _open_watched(self):
        """The request socket: watched when fail_fast (heartbeat sockets stay plain)."""
        if not self._fail_fast:
            return self._open()

        def attach(socket):
            self._watch = ConnectionWatch(socket)
        return open_dealer(self.address, self._curve, attach)

    # A shard gives up on a server it cannot even connect to after this long (the connect timeout if shorter).
    _SHARD_CONNECT_GRACE_S = 2.0

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
        if self._watch is not None:
            self._watch.read_events()
        drops_at_send = self._watch.drops if self._watch is not None else 0
        self._socket.send(frame)
        deadline = time.monotonic() + timeout_ms / 1000
        grace = min(self.connect_timeout_ms / 1000, self._SHARD_CONNECT_GRACE_S)
        while True:
            left = int((deadline - time.monotonic()) * 1000)
            if left <= 0:
                # A fresh socket, so a late reply cannot be read as the answer to a later request.
                self._reopen()
                raise RemoteEnvError("timeout", f"no reply to '{request['op']}' from {self.address} within "
                                                f"{timeout_ms / 1000:.0f} s (is `rlhfgym serve` running there?)")
            # Watched, the wait is cut into short slices to look at the connection between them.
            if not self._socket.poll(left if self._watch is None else min(left, 50)):
                lost = self._watch.lost(drops_at_send, grace) if self._watch is not None else None
                if lost is not None:
                    self._reopen()
                    raise RemoteEnvError("disconnected", f"'{request['op']}' to {self.address}: {lost}")
                continue
            reply = msgpack.unpackb(self._socket.recv(), raw=False)
            if self._watch is not None:
                self._watch.saw_reply()
            if reply.get("id") != request["id"]:
                continue  # the answer to an earlier, abandoned request
            self.last_activity = time.monotonic()
            if not reply.get("ok"):
                raise_error_reply(reply)
            return reply

    def close(self):
        self._close_socket()


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
