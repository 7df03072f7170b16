#!/usr/bin/env python
"""Generate the synthetic Matterport-format world (graphs, skyboxes, R2R/RxR, annotations).

    python scripts/make_world.py --out data/synthetic --houses 60 --seed 0

The default (60 houses, 32 px faces, ~1,370 viewpoints) generates in a few seconds on one core and
is sized so that the quickstart training runs on a CPU in minutes; the toolkit reads
``data/synthetic`` when no data directory is given.
"""
from __future__ import annotations

import argparse
import json
import logging

from vln.cli import script_parser
from vln.errors import VLNError, run_script
from vln.synthetic import default_data_dir
from vln.synthetic.world import DEFAULT_FACE_SIZE, DEFAULT_HOUSES, DEFAULT_PATHS, generate_world


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--out", default=None, help="output data root (default: $CLIPVIL_DATA_DIR or <repo>/data/synthetic)")
    p.add_argument("--houses", type=int, default=DEFAULT_HOUSES, help="number of houses (scans), split ~4:1:1 train/val_unseen/test")
    p.add_argument("--seed", type=int, default=0, help="random seed; equal seeds give byte-identical files")
    p.add_argument("--face-size", type=int, default=DEFAULT_FACE_SIZE, help="skybox face resolution in pixels")
    for split, n in DEFAULT_PATHS.items():
        p.add_argument(f"--{split.replace('_', '-')}-paths", type=int, default=n, help=f"{split} paths per house")
    p.add_argument("--overwrite", action="store_true", help="replace an existing synthetic world in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    out = args.out if args.out is not None else default_data_dir()
    paths = {s: getattr(args, f"{s}_paths") for s in DEFAULT_PATHS}
    summary = generate_world(out, houses=args.houses, seed=args.seed, face_size=args.face_size,
                             paths_per_house=paths, overwrite=args.overwrite, progress=not args.quiet)
    print(json.dumps({k: v for k, v in summary.items() if k != "splits"}, indent=1))
    return summary


if __name__ == "__main__":
    # an existing world (FileExistsError names --overwrite), an unwritable --out: one line, no traceback
    run_script(main, (VLNError, FileExistsError, NotADirectoryError, PermissionError))
