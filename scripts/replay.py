"""Browse episodes and an agent's trajectories in a local web page, or export them.

Examples::

    python scripts/replay.py --data data/synthetic/R2R/R2R_val_unseen.json \\
        --connectivity data/synthetic/connectivity --trajectories runs/x/submit_val_unseen.json \\
        --scans-dir data/synthetic/scans --port 8000        # open http://127.0.0.1:8000/
    python scripts/replay.py ... --export replay_site/      # static files; open replay_site/index.html
    python scripts/replay.py ... --png plots/               # one top-down PNG per episode

Keys in the page: left / right arrow step, space play / pause, Home / End.
"""
from __future__ import annotations

import argparse
import logging
import sys

from vln.cli import script_parser
from vln.errors import VLNError, run_script
from vln.metrics import SUCCESS_DISTANCE
from vln.replay import ReplayData, ReplayServer, ViewRenderer, export_pngs, export_static

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--data", required=True, help="split file: R2R_<split>.json or rxr_<split>_guide.jsonl[.gz]")
    p.add_argument("--connectivity", required=True, help="folder of <scan>_connectivity.json files")
    p.add_argument("--trajectories", default=None,
                   help="agent trajectories: R2R submission .json, per-episode records with 'trajectory' "
                        "(optional 'attention', 'tokens'), or RxR .jsonl[.gz]; default: none, the reference paths are shown")
    p.add_argument("--scans-dir", default=None, help="Matterport scans root holding <scan>/matterport_skybox_images (default: none, no panoramas)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: local only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    p.add_argument("--export", default=None, metavar="DIR", help="write the viewer as static files to DIR and exit (default: serve it)")
    p.add_argument("--png", default=None, metavar="DIR", help="write a top-down plot PNG per episode to DIR and exit (default: serve the viewer)")
    p.add_argument("--episodes", nargs="+", default=None, metavar="INSTR_ID", help="export only these instr_ids (default: all)")
    p.add_argument("--success-distance", type=float, default=SUCCESS_DISTANCE, help="success radius in metres")
    return p


def main(argv=None):
    """Serve the page until interrupted, or write the exports; returns what was exported."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    data = ReplayData(args.data, args.connectivity, args.trajectories, success_distance=args.success_distance)
    renderer = ViewRenderer(args.scans_dir, data.graphs)
    if args.export or args.png:
        out = {}
        if args.export:
            out["export"] = export_static(data, renderer, args.export, args.episodes, progress=True)
        if args.png:
            out["png"] = [str(p) for p in export_pngs(data, args.png, args.episodes, progress=True)]
        return out
    server = ReplayServer(data, renderer, args.host, args.port)
    print(f"serving {len(data)} episodes at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return None


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError, KeyError))  # a bad input: the message says which and why
