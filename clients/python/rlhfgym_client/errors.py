"""The client's exceptions (docs/protocol.md, "Replies and errors")."""


class RemoteEnvError(RuntimeError):
    """An error reply from the server, or a client-side failure. `code` is the protocol's error code (e.g.
    "invalid_argument", "limit_exceeded") or one of the client's own: "timeout" (no reply in time; the socket was
    reopened and the session kept), "session_lost" (see SessionLost)."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class SessionLost(RemoteEnvError):
    """The server no longer knows this client's session: it restarted, or reclaimed the session after its idle
    timeout. Raised by the call that found out (or by the first call after the heartbeat found out), and by every
    session call after it until reset(). The env's episodes are gone; call a full reset() (no mask): it makes a new
    session on the server transparently, and stepping goes on."""

    def __init__(self, message):
        super().__init__("session_lost", message)


class ServerDraining(RemoteEnvError):
    """The server is shutting down (error code "draining": SIGTERM, a rolling upgrade). It takes no new sessions and
    serves no more calls of this one; the episodes in flight on it are lost. close() still works. Make the env again
    on another server."""

    def __init__(self, message):
        super().__init__("draining", message)


class NoServerLeft(RemoteEnvError):
    """Every server of a ShardedVectorEnv is gone (code "no_server"), after waiting up to connect_timeout for one to
    come back; the message names each server and why it was given up on."""

    def __init__(self, message):
        super().__init__("no_server", message)
