"""Human-readable renderings of a navigation state: text (``ansi``) and the current view image."""
from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import numpy as np

from vln.sim.geometry import HEADING_COUNT, HEADING_INCREMENT


@lru_cache(maxsize=8)
def _rooms(data_dir: str) -> dict:
    f = Path(data_dir) / "semantics" / "viewpoint_rooms.json"
    return json.loads(f.read_text()) if f.exists() else {}


def render_ansi(core, b: int) -> str:
    """Instruction, current viewpoint (and room, when the data has room labels) and candidates."""
    w = core.world
    ep = w.episodes[int(core.episode[b])]
    vp = w.viewpoint_ids[int(core.vp[b])]
    room = _rooms(str(w.data_dir)).get(ep.scan, {}).get(vp)
    heading = math.degrees((int(core.view[b]) % HEADING_COUNT) * HEADING_INCREMENT)
    lines = [
        f"[{ep.instr_id}] {ep.instruction}",
        f"step {int(core.steps[b])} at {ep.scan}/{vp}" + (f" ({room.get('room_type', room)})" if isinstance(room, dict) else ""),
        f"heading {heading:.0f} deg, distance to goal {float(core.goal_distance()[b]):.2f} m",
    ]
    rows, count = core.candidate_rows()
    base = (int(core.view[b]) % HEADING_COUNT) * HEADING_INCREMENT
    for k in range(int(count[b])):
        r = int(rows[b, k])
        rel = math.degrees((w.cand_heading[r] - base + math.pi) % (2 * math.pi) - math.pi)
        lines.append(f"  {k}: {w.viewpoint_ids[int(w.cand_target[r])]} heading {rel:+.0f} deg, "
                     f"elevation {math.degrees(w.cand_elevation[r]):+.0f} deg")
    lines.append(f"  {core.stop_action}: STOP")
    return "\n".join(lines)


def render_rgb(core, b: int, width: int = 320, height: int = 240) -> np.ndarray:
    """(H, W, 3) uint8 RGB image of the agent's current view, from the skybox images."""
    from vln.render import load_skybox_faces, render_view

    w = core.world
    scans_dir = Path(w.cfg.scans_dir) if w.cfg.scans_dir else w.data_dir / "scans"
    g_ix = int(core.vp[b])
    scan = w.scans[int(w.scan_of_global[g_ix])]
    graph = w.navgraph[scan]
    local = int(core.local_vp(np.array([g_ix]))[0])
    faces = load_skybox_faces(scans_dir, scan, graph.viewpoint_ids[local])
    view = int(core.view[b])
    heading = (view % HEADING_COUNT) * HEADING_INCREMENT
    elevation = (view // HEADING_COUNT - 1) * math.pi / 6
    pose = graph.records.poses[local].reshape(4, 4)
    return render_view(faces, pose[:3, :3], heading, elevation, math.radians(60), width, height)
