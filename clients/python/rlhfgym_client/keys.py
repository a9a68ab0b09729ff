"""CurveZMQ keys and the allow-list proof (docs/protocol.md, "Security and authentication").

Key files are ZPL certificates as czmq and pyzmq write them (`rlhfgym keys new`, `zmq.auth.create_certificates`):
`public-key = "..."` and, in the secret file, `secret-key = "..."`. Files of earlier rlhfgym builds, one bare Z85 key
line, are still read. X25519 comes from PyNaCl (Debian: python3-nacl), a maintained constant-time library.
"""
import hashlib
import hmac
import re

_PROPERTY = re.compile(r"^\s*(public-key|secret-key)\s*=\s*(.*)$")
_PROOF_CONTEXT = b"rlhfgym-curve-auth-v1"


def read_key(key_or_path, which="public-key"):
    """A Z85 key (bytes, 40 characters) given inline or read from a key file. `which` is "public-key" or
    "secret-key": the property read from a ZPL certificate; a bare one-line file holds just the key. Bytes (what
    zmq.curve_keypair() returns) are read as ASCII text."""
    if isinstance(key_or_path, (bytes, bytearray)):
        key_or_path = bytes(key_or_path).decode("ascii", errors="replace")
    try:
        with open(key_or_path, encoding="ascii") as f:
            lines = [line.rstrip("\n") for line in f]
    except OSError:
        lines = None
    if lines is None:
        text, source = str(key_or_path), "the key given"
    else:
        source = key_or_path
        props = {m.group(1): m.group(2).strip().strip("\"'") for m in map(_PROPERTY.match, lines) if m}
        if props:
            if which not in props:
                raise ValueError(f"{source}: a ZPL certificate without '{which}'")
            text = props[which]
        else:
            keys = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
            if len(keys) != 1:
                raise ValueError(f"{source}: expected exactly one key line, found {len(keys)}")
            text = keys[0]
    text = text.strip()
    if len(text) != 40:
        raise ValueError(f"{source}: a CurveZMQ key is 40 Z85 characters, got {len(text)}")
    return text.encode("ascii")


def x25519(scalar, u):
    """RFC 7748 X25519: 32-byte scalar and u-coordinate -> 32 bytes (PyNaCl's crypto_scalarmult)."""
    from nacl.bindings import crypto_scalarmult  # imported here: only CURVE allow-lists need PyNaCl
    return crypto_scalarmult(bytes(scalar), bytes(u))


def curve_proof(client_secret, server_public):
    """HMAC-SHA256 keyed by X25519(client secret, server public) over the context and both public keys."""
    from nacl.bindings import crypto_scalarmult_base
    client_public = crypto_scalarmult_base(bytes(client_secret))
    try:
        shared = x25519(client_secret, server_public)
    except Exception as e:  # libsodium refuses an all-zero result: a low-order key anyone could "share"
        raise ValueError(f"the server key is a low-order point (the shared secret is zero): {e}") from e
    if not any(shared):
        raise ValueError("the server key is a low-order point (the shared secret is zero)")
    return hmac.new(shared, _PROOF_CONTEXT + client_public + bytes(server_public), hashlib.sha256).digest()
