#!/usr/bin/env python
"""Write speaker instructions for R2R-format paths (offline back-translation data).

Examples::

    python scripts/sample_aug_paths.py --connectivity DIR/connectivity --scans-from DIR/R2R/R2R_train.json \\
        --num 20000 --seed 0 --out aug_paths.json
    python scripts/speak.py --checkpoint runs/speaker/best_val_unseen.pt --paths aug_paths.json --out aug_speaker.json
    python scripts/speak.py --checkpoint runs/speaker/best_val_unseen.pt --split val_unseen --out val_speaker.json

Like EnvDrop's speaker, it describes the shortest path from each path's start to its goal
(augmentation paths are shortest paths), greedily. The output is an R2R JSON file with one
instruction per path, written atomically.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vln.cli import script_parser
from vln.errors import VLNError, run_script

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--checkpoint", required=True, help="a --mode speaker or --mode bt checkpoint")
    p.add_argument("--dataset", default="synthetic", choices=("r2r", "synthetic"), help="dataset format of --data-dir")
    p.add_argument("--data-dir", default=None, help="data root (default: the synthetic world)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--paths", help="an R2R-format file of paths (instructions may be empty)")
    src.add_argument("--split", help="a split of the dataset (one instruction per path is written)")
    p.add_argument("--out", required=True, help="output R2R JSON file")
    p.add_argument("--features", default=None, help="feature store (default: the checkpoint's encoder)")
    p.add_argument("--allow-random-features", action="store_true",
                   help="accept features extracted with random weights (tests and benchmarks only)")
    p.add_argument("--device", default="cpu", help="torch device for decoding")
    p.add_argument("--batch-size", type=int, default=64, help="paths decoded at once")
    p.add_argument("--max-length", type=int, default=None, help="max generated words (default: the run's, 120)")
    return p


def main(argv=None) -> dict:
    """Write the instructions; returns ``{"out", "paths"}``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from agents.data import checked_data_dir
    from agents.inference import speak_paths
    from vln.datasets import DATASETS, read_r2r_paths, write_r2r
    from vln.sim.graph_sim import shared_navgraph

    data_dir = checked_data_dir(args.dataset, args.data_dir, () if args.paths else (args.split,))
    graph = shared_navgraph(str((data_dir / "connectivity").resolve()))
    file = Path(args.paths) if args.paths else DATASETS.get("r2r").split_file(data_dir, args.split)
    records = read_r2r_paths(file, graph=graph)
    out = speak_paths(args.checkpoint, records, data_dir, args.dataset, args.features, args.device, args.batch_size,
                      args.max_length, args.allow_random_features)
    write_r2r(args.out, out)
    result = {"out": args.out, "paths": len(out)}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError, ValueError))
