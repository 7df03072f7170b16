"""Interactive episode replay: a local web page (or a static export) showing what an agent did.

Command line: ``python scripts/replay.py --data R2R_val_unseen.json --connectivity connectivity/
--trajectories submit_val_unseen.json --scans-dir scans/``.

Public API:
    ReplayData(split_file, connectivity, trajectories=None)  -> .index(), .episode(instr_id)
    read_trajectories(path) -> {instr_id: AgentRun}
    ViewRenderer(scans_dir, graphs) -> .view_png(scan, vp, heading_deg), .pano_png(scan, vp)
    ReplayServer(data, renderer, host="127.0.0.1", port=8000)
    export_static(data, renderer, out_dir), export_pngs(data, out_dir)
"""
from __future__ import annotations

from .data import ReplayData, episode_key
from .export import export_pngs, export_static
from .images import ViewRenderer
from .server import ReplayServer
from .trajectories import AgentRun, read_trajectories

__all__ = ["AgentRun", "ReplayData", "ReplayServer", "ViewRenderer", "episode_key", "export_pngs", "export_static",
           "read_trajectories"]
