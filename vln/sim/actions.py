"""EnvDrop's "equivalent action": turning to a candidate's view, then stepping to it."""
from __future__ import annotations

from .geometry import HEADING_COUNT

#: Low-level simulator actions (index, heading delta, elevation delta) of EnvDrop's ``env_actions``.
LEFT = (0, -1, 0)
RIGHT = (0, 1, 0)
UP = (0, 0, 1)
DOWN = (0, 0, -1)


def equivalent_actions(view_index: int, point_id: int, nav_index: int) -> list[tuple[int, int, int]]:
    """The simulator actions EnvDrop's ``make_equiv_action`` takes to reach a candidate.

    From the agent's current ``view_index``, tilt up or down to the candidate's elevation level,
    turn right until ``viewIndex == point_id``, then move to ``navigableLocations[nav_index]``.

    Returns:
        list of ``(index, heading_delta, elevation_delta)`` for ``Simulator.makeAction``.
    """
    out = []
    level, target_level = view_index // HEADING_COUNT, point_id // HEADING_COUNT
    while level < target_level:
        out.append(UP)
        level += 1
    while level > target_level:
        out.append(DOWN)
        level -= 1
    step = view_index % HEADING_COUNT
    while level * HEADING_COUNT + step != point_id:
        out.append(RIGHT)
        step = (step + 1) % HEADING_COUNT
    out.append((int(nav_index), 0, 0))
    return out
