"""A finished episode as the server reports it (docs/protocol.md, "Episode"), with numpy arrays."""
from dataclasses import dataclass
from typing import Optional

import numpy as np


@dataclass(frozen=True)
class Episode:
    response: np.ndarray        # int64 token ids, including the EOS when terminated
    per_token: np.ndarray       # float32: the dense task reward of each response token (Episode delivery)
    online: np.ndarray          # float32: what each step paid under Online delivery
    segments: np.ndarray        # int64, shape (K, 2): [start, end] response positions, inclusive
    raw: np.ndarray             # float64 per segment: the reward model's raw reading
    normalized: np.ndarray      # float64 per segment: after location normalization
    entropies: np.ndarray       # float32: reference LM next-token entropy after each token
    ref_logprobs: np.ndarray    # float32: log pi_ref of each response token (for KL)
    terminated: bool
    truncated: bool
    gold: Optional[float]       # the env judge's score (evaluation only), None without a judge

    @property
    def total(self):
        """The episode's task return: the sum of per_token."""
        return float(self.per_token.sum(dtype=np.float64))

    @staticmethod
    def from_wire(m):
        segments = np.asarray(m["segments"], dtype=np.int64).reshape(-1, 2)
        return Episode(
            response=np.asarray(m["response"], dtype=np.int64),
            per_token=np.asarray(m["per_token"], dtype=np.float32),
            online=np.asarray(m["online"], dtype=np.float32),
            segments=segments,
            raw=np.asarray(m["raw"], dtype=np.float64),
            normalized=np.asarray(m["normalized"], dtype=np.float64),
            entropies=np.asarray(m["entropies"], dtype=np.float32),
            ref_logprobs=np.asarray(m["ref_logprobs"], dtype=np.float32),
            terminated=bool(m["terminated"]),
            truncated=bool(m["truncated"]),
            gold=None if m.get("gold") is None else float(m["gold"]),
        )
