"""Action and observation spaces: gymnasium's own classes when gymnasium is installed, else small stand-ins with the
same names, attributes and contains()/sample() behaviour for what this env uses (Debian 12 has no gymnasium)."""
import numpy as np

try:
    from gymnasium.spaces import Box, Discrete, MultiDiscrete, Sequence  # noqa: F401
    HAVE_GYMNASIUM = True
except ImportError:
    HAVE_GYMNASIUM = False

    class Discrete:
        """Integers 0..n-1 (a token id)."""

        def __init__(self, n, seed=None):
            self.n = int(n)
            self.shape = ()
            self.dtype = np.int64
            self.np_random = np.random.default_rng(seed)

        def contains(self, x):
            return isinstance(x, (int, np.integer)) and not isinstance(x, bool) and 0 <= int(x) < self.n

        def sample(self):
            return np.int64(self.np_random.integers(self.n))

        def __repr__(self):
            return f"Discrete({self.n})"

    class MultiDiscrete:
        """One Discrete per sub-env (a vector env's action)."""

        def __init__(self, nvec, seed=None):
            self.nvec = np.asarray(nvec, dtype=np.int64)
            self.shape = self.nvec.shape
            self.dtype = np.int64
            self.np_random = np.random.default_rng(seed)

        def contains(self, x):
            x = np.asarray(x)
            return x.shape == self.shape and np.issubdtype(x.dtype, np.integer) and bool(np.all((x >= 0) & (x < self.nvec)))

        def sample(self):
            return self.np_random.integers(self.nvec).astype(np.int64)

        def __repr__(self):
            return f"MultiDiscrete({self.nvec.tolist()})"

    class Sequence:
        """Variable-length sequences of elements of `feature_space` (token ids: prompt + response so far)."""

        def __init__(self, feature_space, seed=None):
            self.feature_space = feature_space
            self.shape = None
            self.dtype = None
            self.np_random = np.random.default_rng(seed)

        def contains(self, x):
            if isinstance(x, np.ndarray):
                x = x.tolist()
            return isinstance(x, (list, tuple)) and all(self.feature_space.contains(np.int64(v)) for v in x)

        def sample(self):
            return np.asarray([self.feature_space.sample() for _ in range(int(self.np_random.integers(1, 16)))], dtype=np.int64)

        def __repr__(self):
            return f"Sequence({self.feature_space!r})"

    Box = None

if not HAVE_GYMNASIUM:
    class Tuple:
        """A fixed-length tuple of spaces (a vector env's observation: one token sequence per sub-env)."""

        def __init__(self, spaces):
            self.spaces = tuple(spaces)
            self.shape = None
            self.dtype = None

        def contains(self, x):
            return isinstance(x, tuple) and len(x) == len(self.spaces) and all(s.contains(v) for s, v in zip(self.spaces, x))

        def sample(self):
            return tuple(s.sample() for s in self.spaces)

        def __len__(self):
            return len(self.spaces)

        def __repr__(self):
            return f"Tuple({', '.join(map(repr, self.spaces))})"
else:
    from gymnasium.spaces import Tuple  # noqa: F401


def token_sequence(vocab):
    """The space of one sub-env's observation: a variable-length int64 array of token ids in 0..vocab-1. Gymnasium's
    Sequence holds tuples unless stack=True (gymnasium >= 0.28), which holds the numpy arrays this env returns."""
    if HAVE_GYMNASIUM:
        try:
            return Sequence(Discrete(vocab), stack=True)
        except TypeError:  # an older gymnasium: its Sequence holds tuples only
            pass
    return Sequence(Discrete(vocab))
