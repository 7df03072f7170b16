#!/usr/bin/env python
"""Decode a split greedily with a trained follower and write the leaderboard submission.

Example::

    python scripts/export_submission.py --checkpoint runs/RUN/best_val_unseen.pt --dataset r2r \\
        --data-dir ../shared/data --split test --out submit_test.json

R2R (and the synthetic world) get the R2R ``.json`` list; RxR gets ``.jsonl`` (gzipped when the
name ends in ``.gz``). The written file is read back and validated against the split.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from vln.cli import script_parser
from vln.errors import VLNError, run_script

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--checkpoint", required=True, help="a .pt written by scripts/train_agent.py")
    p.add_argument("--dataset", default="synthetic", choices=("r2r", "rxr", "synthetic"), help="dataset format of --data-dir")
    p.add_argument("--data-dir", default=None, help="data root (default: the synthetic world)")
    p.add_argument("--split", default="test", help="split to decode")
    p.add_argument("--out", required=True, help="submission file (.json for R2R, .jsonl[.gz] for RxR)")
    p.add_argument("--features", default=None, help="feature store (default: the checkpoint's encoder)")
    p.add_argument("--allow-random-features", action="store_true",
                   help="accept features extracted with random weights (tests and benchmarks only)")
    p.add_argument("--language", default=None, help="RxR language filter, e.g. en (default: all languages)")
    p.add_argument("--stanza-dir", default=None,
                   help="RxR: local stanza models (default: the run's --stanza-dir); must split as when the vocabulary was built")
    p.add_argument("--device", default="cpu", help="torch device for decoding")
    p.add_argument("--batch-size", type=int, default=64, help="episodes decoded at once")
    return p


def main(argv=None) -> dict:
    """Write and validate the submission; returns ``{"out", "episodes", "format"}``."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    from agents.inference import decode_split
    from vln.submission import read_submission, validate_submission, write_r2r_submission, write_rxr_submission

    trajs, world = decode_split(args.checkpoint, args.dataset, args.data_dir, args.split, args.features,
                                args.device, args.batch_size, args.language, args.stanza_dir,
                                allow_random_features=args.allow_random_features)
    fmt = "rxr" if args.dataset == "rxr" else "r2r"
    (write_rxr_submission if fmt == "rxr" else write_r2r_submission)(args.out, trajs)
    validate_submission(read_submission(args.out, fmt), world.episodes, world.navgraph, source=args.out)
    result = {"out": args.out, "episodes": len(trajs), "format": fmt}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError, ValueError))
