"""Sample augmentation paths (4-6 edge shortest paths) on training scans; write them as R2R JSON.

Example::

    python scripts/sample_aug_paths.py --connectivity data/connectivity \
        --scans-from data/R2R/R2R_train.json --num 170000 --seed 0 --out data/R2R/R2R_aug_paths.json
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a plain script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vln.cli import script_parser
from vln.datasets import read_r2r_paths, write_r2r  # noqa: E402
from vln.datasets.aug_paths import FIRST_PATH_ID, MAX_EDGES, MIN_EDGES, sample_aug_paths  # noqa: E402
from vln.errors import VLNError, run_script  # noqa: E402
from vln.graph import NavGraph  # noqa: E402

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--connectivity", required=True, type=Path, help="folder of <scan>_connectivity.json files")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scans-from", type=Path, help="R2R file whose scans to sample on (e.g. R2R_train.json)")
    src.add_argument("--scans", help="comma-separated scan ids")
    p.add_argument("--num", type=int, default=None, help="number of paths (default: every candidate pair)")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--min-edges", type=int, default=MIN_EDGES, help="fewest edges of a path")
    p.add_argument("--max-edges", type=int, default=MAX_EDGES, help="most edges of a path")
    p.add_argument("--first-path-id", type=int, default=FIRST_PATH_ID, help="path_id of the first sampled path")
    p.add_argument("--out", required=True, type=Path, help="output R2R JSON file (written atomically)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    graph = NavGraph(args.connectivity)
    if args.scans_from is not None:
        scans = sorted({r.scan for r in read_r2r_paths(args.scans_from)})
    else:
        scans = [s for s in (x.strip() for x in args.scans.split(",")) if s]
    missing = [s for s in scans if s not in graph]
    if missing:
        raise SystemExit(f"scans without a connectivity graph in {args.connectivity}: {', '.join(missing)}")
    paths = sample_aug_paths(graph, scans, args.num, args.seed, args.min_edges, args.max_edges, args.first_path_id)
    write_r2r(args.out, paths)
    logger.info("wrote %d augmentation paths on %d scans to %s", len(paths), len(scans), args.out)
    return 0


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError))  # a missing graph folder or split file: one line
