"""Python client for RlhfGym env servers (`rlhfgym serve`; docs/protocol.md, clients/python/README.md).

Dependencies: pyzmq, msgpack and numpy; PyNaCl for a CurveZMQ allow-list; gymnasium optional (with it, VectorEnv and
Env are real gymnasium classes and "RlhfGym/Remote-v0" is registered for gymnasium.make).
"""
from .episode import Episode
from .env import Env
from .errors import NoServerLeft, RemoteEnvError, ServerDraining, SessionLost
from .health import health
from .keys import curve_proof, read_key, x25519
from .connection import PROTOCOL_VERSION
from .options import option_text
from .sharded import ShardedVectorEnv, ShardServer
from .spaces import HAVE_GYMNASIUM
from .vector_env import NO_ACTION, VectorEnv

__version__ = "0.2.0"
__all__ = ["Env", "Episode", "HAVE_GYMNASIUM", "NO_ACTION", "NoServerLeft", "PROTOCOL_VERSION", "RemoteEnvError", "ServerDraining",
           "SessionLost", "ShardServer", "ShardedVectorEnv", "VectorEnv", "curve_proof", "health", "option_text", "read_key", "x25519"]

GymEnv = Env  # the name earlier releases used

if HAVE_GYMNASIUM:
    import gymnasium

    if "RlhfGym/Remote-v0" not in gymnasium.registry:
        gymnasium.register(id="RlhfGym/Remote-v0", entry_point="rlhfgym_client.env:Env",
                           vector_entry_point="rlhfgym_client.vector_env:VectorEnv")
