"""Observation and action spaces of the navigation environments (fixed shapes, padded)."""
from __future__ import annotations

import copy
import weakref

import numpy as np
from gymnasium import spaces

from .angles import ANGLE_FEATURE_SIZE


def observation_space(vocab_size: int, max_len: int, feature_dim: int, max_candidates: int,
                      max_scan_size: int, num_feature_rows: int, feature_mode: str = "numpy",
                      feature_bounds: tuple = (-1.0, 1.0), *, max_candidate_distance: float) -> spaces.Dict:
    """The single-environment observation space.

    Keys:
        instruction: (L,) int64 token ids (``<PAD>``-padded).
        instruction_length: (1,) int64 number of real tokens.
        view_index: (1,) int64 the agent's view 0..35 (heading step + 12 * elevation level).
        candidate_viewpoints: (K,) int64 scan-local index of each candidate viewpoint, -1 = padding.
        action_mask: (K+1,) int8, 1 for the candidates and for STOP (the last action).
        candidate_distances: (K,) float32 metres from the agent to each candidate (MatterSim's
            ``rel_distance``; 0 for padding).
        view_features (numpy mode): (36, D+128) float32, view features ++ angle features relative
            to the agent's heading.
        candidate_features (numpy mode): (K, D+128) float32, the feature of the view in which each
            candidate is seen ++ its angle feature (zeros for padding).
        feature_row, candidate_point_ids, candidate_angles (index mode): where to gather the visual
            features from one (rows, 36, D) tensor, and each candidate's [sin h, cos h, sin e, cos e]
            (to be tiled to 128); view angle features are ``VIEW_ANGLE_FEATURES[view_index % 12]``.
        candidate_feature_rows (index mode): (K,) int64 feature row of each candidate's viewpoint,
            -1 = padding (what the agent would see there: ``features[row, candidate_point_ids]``).

    ``feature_bounds`` are the (low, high) of the visual features (the store's min and max,
    widened to include the [-1, 1] of the angle features); ``max_candidate_distance`` (metres)
    bounds ``candidate_distances``.
    """
    K, A = max_candidates, ANGLE_FEATURE_SIZE
    d = {
        "instruction": spaces.Box(0, max(vocab_size - 1, 0), (max_len,), np.int64),
        "instruction_length": spaces.Box(0, max_len, (1,), np.int64),
        "view_index": spaces.Box(0, 35, (1,), np.int64),
        "candidate_viewpoints": spaces.Box(-1, max_scan_size - 1, (K,), np.int64),
        "action_mask": spaces.Box(0, 1, (K + 1,), np.int8),
        "candidate_distances": spaces.Box(0.0, np.float32(max_candidate_distance), (K,), np.float32),
    }
    if feature_mode == "index":
        d["feature_row"] = spaces.Box(-1, max(num_feature_rows - 1, 0), (1,), np.int64)
        d["candidate_point_ids"] = spaces.Box(-1, 35, (K,), np.int64)
        d["candidate_feature_rows"] = spaces.Box(-1, max(num_feature_rows - 1, 0), (K,), np.int64)
        d["candidate_angles"] = spaces.Box(-1.0, 1.0, (K, 4), np.float32)
    elif feature_mode == "numpy":
        low, high = min(feature_bounds[0], -1.0), max(feature_bounds[1], 1.0)
        d["view_features"] = spaces.Box(low, high, (36, feature_dim + A), np.float32)
        d["candidate_features"] = spaces.Box(low, high, (K, feature_dim + A), np.float32)
    else:
        raise ValueError(f"feature_mode must be 'numpy' or 'index', got {feature_mode!r}")
    return spaces.Dict(d)


class MaskedDiscrete(spaces.Discrete):
    """``Discrete(K+1)`` whose ``sample()`` draws only valid actions of the current state.

    Invalid actions raise in ``step`` (never a silent STOP), so generic tools that call
    ``action_space.sample()`` (Gymnasium's and SB3's env checkers, random agents) get the
    environment's current action mask unless they pass one. The link to the environment is a
    weak reference; copies and pickles keep a plain sampler.
    """

    def __init__(self, n: int, mask_source=None, seed=None):
        super().__init__(n, seed=seed)
        self._mask_source = weakref.WeakMethod(mask_source) if mask_source is not None else None

    def sample(self, mask=None, probability=None):
        if mask is None and probability is None and self._mask_source is not None:
            source = self._mask_source()
            if source is not None:
                mask = np.asarray(source(), dtype=np.int8)
        return super().sample(mask=mask, probability=probability)

    def __deepcopy__(self, memo):
        new = MaskedDiscrete(int(self.n))
        new._np_random = copy.deepcopy(self._np_random, memo)
        new._mask_source = self._mask_source
        return new

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_mask_source"] = None
        return state


def action_space(max_candidates: int, mask_source=None) -> spaces.Discrete:
    """Discrete(K+1): candidate slots 0..K-1, STOP = K (sampling follows ``mask_source()``)."""
    return MaskedDiscrete(max_candidates + 1, mask_source)
