"""Device-resident feature tables and the conversion of index-mode observations to tensors.

The environment (``feature_mode="index"``) only reports feature rows, candidate view indices and
four angle numbers per candidate; the visual features live here as ONE (rows, 36, D) tensor on the
training device, so a step moves a few hundred integers to the device instead of the candidate
features of every episode (the original EnvDrop copied those each step).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from envs.angles import ANGLE_FEATURE_SIZE, VIEW_ANGLE_FEATURES, angle_features
from vln.sim.geometry import HEADING_COUNT

#: (36, 128) angle feature of the agent's own heading/elevation for each view index (EnvDrop's
#: ``input_a_t``, the embedding input of the previous action).
VIEW_INDEX_ANGLES = angle_features((np.arange(36) % HEADING_COUNT) * (np.pi / 6.0),
                                   (np.arange(36) // HEADING_COUNT - 1) * (np.pi / 6.0))


@dataclass
class StepInputs:
    """Tensors of one decoding step for a batch of B environments (K candidate slots).

    Attributes:
        views: (B, 36, D+128) float32 panoramic features, visual part first.
        candidates: (B, K+1, D+128) float32; slot K is STOP (all zeros). With the look-ahead
            (``step_inputs(..., lookahead=True)``): (B, K+1, 2D+128), the candidate's view, then
            the view one step ahead, then the angles.
        candidate_mask: (B, K+1) bool, True where the slot is padding.
        action_angles: (B, 128) float32 angle feature of the agent's heading/elevation.
        candidate_distances: (B, K+1) float32 metres to each candidate (MatterSim's
            ``rel_distance``); 0 for padding and STOP.
    """

    views: torch.Tensor
    candidates: torch.Tensor
    candidate_mask: torch.Tensor
    action_angles: torch.Tensor
    candidate_distances: torch.Tensor


class FeatureBank:
    """Features of a :class:`envs.world.NavWorld` on a device.

    Args:
        features: (rows, 36, D) float array (``world.features``); D may be 0 (angle-only agent).
        device: torch device.
    """

    def __init__(self, features: np.ndarray, device):
        self.device = torch.device(device)
        self.dim = int(features.shape[-1]) if features.ndim == 3 else 0
        self.features = torch.tensor(np.asarray(features, dtype=np.float32), device=self.device)
        self.view_angles = torch.as_tensor(VIEW_ANGLE_FEATURES, device=self.device)  # (12, 36, 128)
        self.index_angles = torch.as_tensor(VIEW_INDEX_ANGLES, device=self.device)  # (36, 128)

    @property
    def feature_size(self) -> int:
        """D + 128."""
        return self.dim + ANGLE_FEATURE_SIZE

    def step_inputs(self, obs: dict, env_mask: torch.Tensor | None = None, rows: np.ndarray | None = None,
                    lookahead: bool = False) -> StepInputs:
        """Gather the step tensors of an index-mode observation dict (arrays with leading B).

        ``lookahead``: each candidate's visual part is followed by the view one step ahead: the
        feature of the candidate's viewpoint (``obs["candidate_feature_rows"]``) in the view the
        agent faces on arriving there: the candidate's own view index (a move keeps the heading
        and elevation of the view the candidate is seen in, as :meth:`envs.batch.NavBatch.step`).
        No features (D = 0): nothing is added.

        ``env_mask``: optional (B, D) environmental-dropout mask multiplied into every visual
        feature (views and candidates) of each environment.
        ``rows``: optional (n,) int64 environments to gather (the tensors then have n rows).
        """
        dev = self.device

        def take(key):
            return obs[key] if rows is None else obs[key].take(rows, axis=0)

        if rows is not None and env_mask is not None:
            env_mask = env_mask[torch.as_tensor(rows, device=dev)]
        view = torch.as_tensor(take("view_index")[:, 0], device=dev)
        point = torch.as_tensor(take("candidate_point_ids"), device=dev)  # (B, K), -1 padding
        four = torch.as_tensor(take("candidate_angles"), device=dev)  # (B, K, 4)
        B, K = point.shape
        valid = point >= 0
        view_ang = self.view_angles[view % HEADING_COUNT]
        cand_ang = four.repeat(1, 1, ANGLE_FEATURE_SIZE // 4)
        if self.dim:
            feature_rows = torch.as_tensor(take("feature_row")[:, 0], device=dev)
            vis = self.features[feature_rows]  # (B, 36, D)
            if env_mask is not None:
                vis = vis * env_mask[:, None, :]
            cand_vis = torch.gather(vis, 1, point.clamp(min=0)[:, :, None].expand(B, K, self.dim))
            cand_vis = cand_vis * valid[:, :, None]
            if lookahead:
                ahead_rows = torch.as_tensor(take("candidate_feature_rows"), device=dev)  # (B, K), -1 padding
                ahead = self.features[ahead_rows.clamp(min=0), point.clamp(min=0)]  # (B, K, D)
                if env_mask is not None:
                    ahead = ahead * env_mask[:, None, :]
                cand_vis = torch.cat([cand_vis, ahead * (ahead_rows >= 0)[:, :, None]], dim=2)
            views = torch.cat([vis, view_ang], dim=2)
            cands = torch.cat([cand_vis, cand_ang], dim=2)
        else:
            views, cands = view_ang, cand_ang
        cands = torch.cat([cands, cands.new_zeros(B, 1, cands.shape[2])], dim=1)
        mask = torch.cat([~valid, valid.new_zeros(B, 1)], dim=1)
        distances = torch.as_tensor(take("candidate_distances"), device=dev)
        distances = torch.cat([distances, distances.new_zeros(B, 1)], dim=1)
        return StepInputs(views, cands, mask, self.index_angles[view], distances)
