"""Browse episodes and an agent's trajectories in a local web page, or export them.

Examples::

    python scripts/replay.py --data data/synthetic/R2R/R2R_val_unseen.json \\
        --connectivity data/synthetic/connectivity --trajectories runs/x/submit_val_unseen.json \\
        --scans-dir data/synthetic/scans --port 8000        # open http://127.0.0.1:8000/
                                                            # or http://127.0.0.1:8000/#<instr_id>
    python scripts/replay.py ... --export replay_site/      # static files; open replay_site/index.html
    python scripts/replay.py ... --png plots/               # one top-down PNG per episode

The page opens on the episode named after ``#`` in its URL, else on the first one. Keys: left /
right arrow step, space play / pause, Home / End. The server listens on 127.0.0.1 only; another
address needs ``--allow-remote`` (anyone who can reach it then reads the data: prefer an SSH
tunnel, ``ssh -L 8000:127.0.0.1:8000 host``).
"""
from __future__ import annotations

import argparse
import logging
import sys

from vln.cli import script_parser
from vln.errors import VLNError, run_script
from vln.metrics import SUCCESS_DISTANCE
from vln.replay import ReplayData, ReplayServer, ViewRenderer, export_pngs, export_static
from vln.replay.server import check_bind

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--data", required=True, help="split file: R2R_<split>.json or rxr_<split>_guide.jsonl[.gz]")
    p.add_argument("--connectivity", required=True, help="folder of <scan>_connectivity.json files")
    p.add_argument("--trajectories", default=None,
                   help="agent trajectories: R2R submission .json, per-episode records with 'trajectory' "
                        "(optional 'attention', 'tokens'), or RxR .jsonl[.gz]; default: none, the reference paths are shown")
    p.add_argument("--scans-dir", default=None, help="Matterport scans root holding <scan>/matterport_skybox_images (default: none, no panoramas)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; anything but a loopback address needs --allow-remote")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a --host other machines can reach (0.0.0.0, a LAN address): they can then read "
                        "every episode, trajectory and image served, without authentication")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a further host name the browser may use to reach the server (repeatable; the Host "
                        "header of every request must name the server, against DNS rebinding)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (0: any free port)")
    p.add_argument("--export", default=None, metavar="DIR", help="write the viewer as static files to DIR and exit (default: serve it)")
    p.add_argument("--png", default=None, metavar="DIR", help="write a top-down plot PNG per episode to DIR and exit (default: serve the viewer)")
    p.add_argument("--episodes", nargs="+", default=None, metavar="INSTR_ID", help="export only these instr_ids (default: all)")
    p.add_argument("--success-distance", type=float, default=SUCCESS_DISTANCE, help="success radius in metres")
    return p


def main(argv=None):
    """Serve the page until interrupted, or write the exports; returns what was exported."""
    args = build_parser().parse_args(argv)
    if not (args.export or args.png):
        check_bind(args.host, args.allow_remote)  # before minutes of loading
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
    try:
        server = ReplayServer(data, renderer, args.host, args.port, allow_remote=args.allow_remote,
                              allowed_hosts=args.allowed_host)
    except OSError as e:  # address in use, or not an address of this machine
        raise VLNError(f"cannot listen on {args.host}:{args.port}: {e.strerror or e}; choose another --port "
                       "(0 picks a free one) or --host") from None
    if server.allow_remote:
        print(f"WARNING: listening on {args.host}: every machine that can reach {server.url} can read these "
              "episodes, trajectories and images (no authentication)", file=sys.stderr, flush=True)
    first = next(iter(data.keys), None)  # the page opens on it; #<key> in the URL opens another
    print(f"serving {len(data)} episodes at {server.url} (Ctrl-C to stop)"
          + (f"; a deep link: {server.url}#{first}" if first is not None else ""), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return None


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError, KeyError))  # a bad input: the message says which and why
