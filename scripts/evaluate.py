"""Score a leaderboard-format submission on an R2R or RxR split.

Example::

    python scripts/evaluate.py --data ../shared/data/R2R/R2R_val_unseen.json \\
        --connectivity ../shared/data/connectivity --submission submit_val_unseen.json \\
        --per-episode val_unseen_episodes.json

Prints the aggregate as JSON on stdout; ``--per-episode`` writes one record per instruction
(atomically).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from vln.cli import script_parser
from vln.errors import VLNError, run_script
from vln.evaluate import Evaluator
from vln.io_utils import atomic_write_json
from vln.submission import FORMATS

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--data", required=True, help="split file: R2R_<split>.json or rxr_<split>_guide.jsonl[.gz]")
    p.add_argument("--connectivity", required=True, help="folder of <scan>_connectivity.json files")
    p.add_argument("--submission", required=True, help="R2R .json list or RxR .jsonl[.gz] submission")
    p.add_argument("--format", default="auto", choices=("auto",) + FORMATS,
                   help="submission format (auto: .jsonl[.gz] is RxR, anything else R2R)")
    p.add_argument("--per-episode", default=None, help="write per-episode metrics (JSON list) here (default: not written)")
    p.add_argument("--allow-partial", action="store_true", help="score a submission covering part of the split")
    p.add_argument("--success-distance", type=float, default=3.0, help="success radius in metres (strict <)")
    return p


def main(argv=None) -> dict:
    """Run the evaluation; return the summary that was printed."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    evaluator = Evaluator.from_files(args.data, args.connectivity, success_distance=args.success_distance)
    result = evaluator.score_file(args.submission, fmt=args.format, allow_partial=args.allow_partial)
    if args.per_episode:
        atomic_write_json(args.per_episode, result.episodes, indent=1)
        logger.info("wrote %d per-episode records to %s", len(result.episodes), args.per_episode)
    print(json.dumps(result.summary, indent=2))
    return result.summary


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError))  # a bad input file: the message says which and why
