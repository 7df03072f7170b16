"""Epoch-wise shuffled batches of episode indices with a JSON-serialisable state (exact resume)."""
from __future__ import annotations

import numpy as np


class EpisodeSampler:
    """Yields batches of ``batch_size`` indices in ``range(n)``, reshuffling at each epoch end.

    Like the original ``R2RBatch._next_minibatch``: a batch that runs past the end of the epoch
    is completed from the next epoch's permutation.
    """

    def __init__(self, n: int, batch_size: int, seed: int):
        if n < 1:
            raise ValueError("no episodes to sample from")
        self.n, self.batch_size = n, batch_size
        self.rng = np.random.default_rng(seed)
        self.perm = self.rng.permutation(n)
        self.pos = 0

    def next(self) -> np.ndarray:
        """(batch_size,) int64 episode indices."""
        out = []
        need = self.batch_size
        while need:
            take = self.perm[self.pos: self.pos + need]
            out.append(take)
            need -= len(take)
            self.pos += len(take)
            if self.pos >= self.n:
                self.perm, self.pos = self.rng.permutation(self.n), 0
        return np.concatenate(out).astype(np.int64)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "perm": self.perm.tolist(), "pos": self.pos, "n": self.n}

    def load_state_dict(self, state: dict) -> None:
        if state["n"] != self.n:
            raise ValueError(f"sampler state is for {state['n']} episodes, this split has {self.n}")
        self.rng.bit_generator.state = state["rng"]
        self.perm = np.asarray(state["perm"], dtype=np.int64)
        self.pos = int(state["pos"])
