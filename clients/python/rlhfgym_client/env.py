"""Env: one sub-env with Gymnasium's single-env API (a real gymnasium.Env when gymnasium is installed).

Observation: prompt + response so far (int64 numpy array, fresh each call). Action: a token id. The episode ends with
terminated (the agent emitted EOS) or truncated (the token budget ran out); reset() starts the next one.
"""
import numpy as np

from .spaces import HAVE_GYMNASIUM
from .vector_env import VectorEnv

if HAVE_GYMNASIUM:
    import gymnasium
    _Base = gymnasium.Env
else:
    _Base = object


class Env(_Base):
    metadata = {"render_modes": []}

    def __init__(self, address="tcp://127.0.0.1:5555", env=None, options=None, **connection):
        """The same arguments as VectorEnv (less num_envs and autoreset)."""
        self._vector = VectorEnv(address, env=env, num_envs=1, autoreset="disabled", options=options, **connection)
        # The server's spec map (`spec` is gymnasium's EnvSpec under gymnasium.make); spec_wire is its earlier name.
        self.server_spec = self.spec_wire = self._vector.server_spec
        self.action_space = self._vector.single_action_space
        self.observation_space = self._vector.single_observation_space
        self.last_episode = None

    def reset(self, *, seed=None, options=None):
        if HAVE_GYMNASIUM:
            super().reset(seed=seed)
        obs, info = self._vector.reset(seed=seed, options=options)
        self.last_episode = None
        return obs[0], {k: v[0] for k, v in info.items()}

    def step(self, action):
        # As VectorEnv: an int or numpy integer; a float (even 2.0) is a ValueError, never truncated to a token id.
        obs, rewards, terminated, truncated, info = self._vector.step(np.asarray([action]).reshape(1))
        self.last_episode = self._vector.finished_episodes.get(0)
        single = {"ref_logprob": float(info["ref_logprob"][0]), "ref_entropy": float(info["ref_entropy"][0]),
                  "segment_ended": bool(info["segment_ended"][0]), "raw_read": float(info["raw_read"][0])}
        if self.last_episode is not None:
            single["episode"] = self.last_episode
        return obs[0], float(rewards[0]), bool(terminated[0]), bool(truncated[0]), single

    def close(self):
        self._vector.close()
