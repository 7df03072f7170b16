"""Heading harmonics in the agents' angle channels (``--angle-harmonics``).

EnvDrop's 128 angle channels of a view or candidate feature are ``[sin h, cos h, sin e, cos e]``
repeated 32 times (h: heading relative to the agent, e: elevation; :func:`envs.angles.angle_features`).
The follower scores a candidate with a dot product between its feature and a vector made from its
state, so the angle part of the score is ``a sin h + b cos h + ...``: one smooth bump over the
heading. It cannot score a band of headings ("turn right": 60 to 140 degrees) alike and the headings
just outside it clearly lower. With ``K`` harmonics the channels become ``[sin h, cos h, sin 2h, cos 2h, ...,
sin Kh, cos Kh, sin e, cos e]`` (Fourier features of the heading), repeated ``128 // (2K + 2)``
times and zero-padded to 128, so the score can be any K-term trigonometric polynomial of the
heading. ``K = 1`` is EnvDrop's encoding, unchanged.

The harmonics are formed from the channels themselves (``cos kh + i sin kh = (cos h + i sin h)^k``),
so all-zero channels (padding and STOP slots) stay zero, and no feature store or simulator output
changes: the re-encoding is the model's own (the follower's decoder, the speaker's encoder; each
checkpoint records its ``angle_harmonics``).
"""
from __future__ import annotations

import torch

from envs.angles import ANGLE_FEATURE_SIZE

from .config import MAX_ANGLE_HARMONICS

assert 2 * MAX_ANGLE_HARMONICS + 2 <= ANGLE_FEATURE_SIZE


def check_harmonics(harmonics: int) -> None:
    """Raise ValueError unless 1 <= ``harmonics`` and the 2K + 2 channels fit in the 128."""
    if not 1 <= harmonics <= MAX_ANGLE_HARMONICS:
        raise ValueError(f"angle harmonics must be 1..{MAX_ANGLE_HARMONICS}, got {harmonics}")


def harmonic_angles(features: torch.Tensor, visual_dim: int, harmonics: int) -> torch.Tensor:
    """Re-encode the angle channels of view or candidate features with ``harmonics`` heading harmonics.

    Args:
        features: (..., D + 128) float: ``D`` visual channels, then EnvDrop's angle channels.
        visual_dim: D.
        harmonics: K >= 1 (1: return ``features`` itself).

    Returns:
        (..., D + 128): the visual channels unchanged, the angle channels
        ``[sin h, cos h, ..., sin Kh, cos Kh, sin e, cos e]`` tiled ``128 // (2K + 2)`` times,
        then zeros.
    """
    check_harmonics(harmonics)
    if harmonics == 1:
        return features
    angles = features[..., visual_dim:visual_dim + 4]
    sin1, cos1 = angles[..., 0], angles[..., 1]
    parts = [sin1, cos1]
    sin_k, cos_k = sin1, cos1
    for _ in range(harmonics - 1):  # (cos kh + i sin kh)(cos h + i sin h)
        sin_k, cos_k = sin_k * cos1 + cos_k * sin1, cos_k * cos1 - sin_k * sin1
        parts += [sin_k, cos_k]
    parts += [angles[..., 2], angles[..., 3]]
    block = torch.stack(parts, dim=-1)
    reps = ANGLE_FEATURE_SIZE // block.shape[-1]
    pad = ANGLE_FEATURE_SIZE - reps * block.shape[-1]
    tiled = block.repeat(*([1] * (block.dim() - 1)), reps)
    return torch.cat([features[..., :visual_dim], tiled, tiled.new_zeros(*tiled.shape[:-1], pad)], dim=-1)
