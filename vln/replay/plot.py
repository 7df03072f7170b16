"""Top-down PNG plots of episodes (``scripts/replay.py --png``), drawn with Pillow.

Same data as the page's SVG (:meth:`vln.replay.data.ReplayData.episode` ``plot``): the floor's
navigation graph in grey, the reference path in green, the agent's path in blue, the start as a
black square and the goal with its success radius. Drawn at 3x and downsampled for smooth lines.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from ..io_utils import atomic_path

logger = logging.getLogger(__name__)

COLOURS = {"edge": (200, 200, 200), "node": (150, 150, 150), "reference": (34, 160, 70),
           "agent": (40, 90, 220), "start": (0, 0, 0), "goal": (220, 60, 40), "text": (30, 30, 30)}
_SUPERSAMPLE = 3


def plot_image(episode: dict, size: int = 800, margin_px: int = 40):
    """Render an episode's top-down plot.

    Args:
        episode: a view model from :meth:`vln.replay.data.ReplayData.episode`.
        size: the longer side of the image in pixels.
        margin_px: border in pixels.

    Returns:
        a ``PIL.Image.Image`` (RGB); north (+y) is up, one scale for x and y.
    """
    from PIL import Image, ImageDraw

    plot = episode["plot"]
    s = _SUPERSAMPLE
    xy = np.array([[n[1], n[2]] for n in plot["nodes"]], dtype=np.float64)
    lo, hi = xy.min(0), xy.max(0)
    r_goal = float(episode.get("success_distance") or 0.0)
    goal = xy[plot["reference"][-1]]
    lo, hi = np.minimum(lo, goal - r_goal), np.maximum(hi, goal + r_goal)
    span = np.maximum(hi - lo, 1e-6)
    scale = (size - 2 * margin_px) / span.max()
    w, h = (np.ceil(span * scale).astype(int) + 2 * margin_px)

    def px(p):
        return ((p[0] - lo[0]) * scale + margin_px) * s, ((hi[1] - p[1]) * scale + margin_px) * s

    img = Image.new("RGB", (int(w) * s, int(h) * s), (255, 255, 255))
    d = ImageDraw.Draw(img)
    gx, gy = px(goal)
    d.ellipse([gx - r_goal * scale * s, gy - r_goal * scale * s, gx + r_goal * scale * s, gy + r_goal * scale * s],
              outline=COLOURS["goal"], width=s)
    for i, j in plot["edges"]:
        d.line([px(xy[i]), px(xy[j])], fill=COLOURS["edge"], width=2 * s)
    for p in xy:
        x, y = px(p)
        d.ellipse([x - 3 * s, y - 3 * s, x + 3 * s, y + 3 * s], fill=COLOURS["node"])
    for name, width in (("reference", 7), ("agent", 4)):
        nodes = plot.get(name)
        if nodes and len(nodes) > 1:
            d.line([px(xy[k]) for k in nodes], fill=COLOURS[name], width=width * s, joint="curve")
    x, y = px(xy[plot["reference"][0]])
    d.rectangle([x - 7 * s, y - 7 * s, x + 7 * s, y + 7 * s], fill=COLOURS["start"])
    d.ellipse([gx - 7 * s, gy - 7 * s, gx + 7 * s, gy + 7 * s], fill=COLOURS["goal"])
    if plot.get("agent"):
        x, y = px(xy[plot["agent"][-1]])
        d.polygon([(x, y - 9 * s), (x + 8 * s, y + 6 * s), (x - 8 * s, y + 6 * s)], fill=COLOURS["agent"])
    img = img.resize((int(w), int(h)), Image.LANCZOS)
    ImageDraw.Draw(img).text((6, 6), f"{episode['instr_id']}  ({episode['scan']})", fill=COLOURS["text"])
    return img


def write_plot_png(episode: dict, path: str | os.PathLike, size: int = 800) -> Path:
    """Write :func:`plot_image` of ``episode`` to ``path`` atomically; returns the path."""
    path = Path(path)
    img = plot_image(episode, size)
    with atomic_path(path) as tmp:
        img.save(tmp, format="PNG")
    return path
