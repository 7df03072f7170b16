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

With ``distances`` (``--candidate-distance``) a candidate's block gains one more channel, its
distance in units of :data:`DISTANCE_UNIT` (MatterSim's ``rel_distance``, metres), so the score can
prefer a far candidate to a near one seen in the same direction (the doorway across a room over the
panorama inside it); EnvDrop's features carry no distance.

The harmonics are formed from the channels themselves (``cos kh + i sin kh = (cos h + i sin h)^k``),
so all-zero channels (padding and STOP slots) stay zero, and no feature store or simulator output
changes: the re-encoding is the model's own (the follower's decoder, the speaker's encoder; each
checkpoint records its ``angle_harmonics``).
"""
from __future__ import annotations

import torch

from envs.angles import ANGLE_FEATURE_SIZE

from .config import MAX_ANGLE_HARMONICS, max_angle_harmonics

assert 2 * MAX_ANGLE_HARMONICS + 2 <= ANGLE_FEATURE_SIZE

#: metres per unit of the distance channel (a typical step, 2-3 m, reads about 0.7-1, as the angle channels)
DISTANCE_UNIT = 3.0


def check_harmonics(harmonics: int, distance: bool = False) -> None:
    """Raise ValueError unless 1 <= ``harmonics`` and the 2K + 2 channels (+ 1 with ``distance``) fit in the 128."""
    if not 1 <= harmonics <= MAX_ANGLE_HARMONICS:
        raise ValueError(f"angle harmonics must be 1..{MAX_ANGLE_HARMONICS}, got {harmonics}")
    if harmonics > max_angle_harmonics(distance):
        raise ValueError(f"angle harmonics must be 1..{max_angle_harmonics(True)} with the candidate distance channel, "
                         f"got {harmonics}")


def harmonic_angles(features: torch.Tensor, visual_dim: int, harmonics: int,
                    distances: torch.Tensor | None = None) -> torch.Tensor:
    """Re-encode the angle channels of view or candidate features with ``harmonics`` heading harmonics.

    Args:
        features: (..., D + 128) float: ``D`` visual channels, then EnvDrop's angle channels.
        visual_dim: D.
        harmonics: K >= 1 (1 without ``distances``: return ``features`` itself).
        distances: None, or (...) float metres to each candidate (0 for padding and STOP).

    Returns:
        (..., D + 128): the visual channels unchanged, the angle channels
        ``[sin h, cos h, ..., sin Kh, cos Kh, sin e, cos e]`` (then ``distance / DISTANCE_UNIT``
        with ``distances``) tiled ``128 // (2K + 2)`` (``128 // (2K + 3)``) times, then zeros.
    """
    check_harmonics(harmonics, distances is not None)
    if harmonics == 1 and distances is None:
        return features
    angles = features[..., visual_dim:visual_dim + 4]
    sin1, cos1 = angles[..., 0], angles[..., 1]
    parts = [sin1, cos1]
    sin_k, cos_k = sin1, cos1
    for _ in range(harmonics - 1):  # (cos kh + i sin kh)(cos h + i sin h)
        sin_k, cos_k = sin_k * cos1 + cos_k * sin1, cos_k * cos1 - sin_k * sin1
        parts += [sin_k, cos_k]
    parts += [angles[..., 2], angles[..., 3]]
    if distances is not None:
        parts.append(distances.to(features.dtype) / DISTANCE_UNIT)
    block = torch.stack(parts, dim=-1)
    reps = ANGLE_FEATURE_SIZE // block.shape[-1]
    pad = ANGLE_FEATURE_SIZE - reps * block.shape[-1]
    tiled = block.repeat(*([1] * (block.dim() - 1)), reps)
    return torch.cat([features[..., :visual_dim], tiled, tiled.new_zeros(*tiled.shape[:-1], pad)], dim=-1)
