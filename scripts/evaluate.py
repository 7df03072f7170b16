"""Score a leaderboard-format submission on an R2R or RxR split, or check one before upload.

Examples::

    python scripts/evaluate.py --data ../shared/data/R2R/R2R_val_unseen.json \\
        --connectivity ../shared/data/connectivity --submission submit_val_unseen.json \\
        --per-episode val_unseen_episodes.json
    python scripts/evaluate.py --validate-only --data ../shared/data/R2R/R2R_test.json \\
        --submission submit_test.json        # test splits have no goals: check the format only

Scoring prints the aggregate as JSON on stdout; ``--per-episode`` writes one record per
instruction (atomically). ``--validate-only`` prints one ``OK`` line, or every problem (record and
field named) and exits with status 1. ``--connectivity`` defaults to ``connectivity/`` beside the
split's folder; ``--dataset``/``--data-dir``/``--split`` name the split file instead of ``--data``.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from vln.cli import script_parser
from vln.datasets import DATASETS
from vln.errors import VLNError, run_script
from vln.evaluate import Evaluator
from vln.graph import NavGraph
from vln.io_utils import atomic_write_json
from vln.submission import FORMATS, submission_format
from vln.submission_check import InvalidSubmission, check_submission_file

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--data", default=None, help="split file: R2R_<split>.json or rxr_<split>_guide.jsonl[.gz]")
    p.add_argument("--dataset", default="r2r", choices=DATASETS.names(), help="with --data-dir and --split, instead of --data")
    p.add_argument("--data-dir", default=None, help="data root holding R2R/ or RxR/ (with --split, instead of --data)")
    p.add_argument("--split", default=None, help="split name under --data-dir (val_unseen, test, ...)")
    p.add_argument("--connectivity", default=None,
                   help="folder of <scan>_connectivity.json files (default: connectivity/ beside the split's folder)")
    p.add_argument("--submission", required=True, help="R2R .json list or RxR .jsonl[.gz] submission")
    p.add_argument("--format", default="auto", choices=("auto",) + FORMATS,
                   help="submission format (auto: .jsonl[.gz] is RxR, anything else R2R)")
    p.add_argument("--validate-only", action="store_true",
                   help="check the submission's format against the split (every instr_id once, trajectories that "
                        "start at the episode's start and follow the graph) without scoring; works on test splits")
    p.add_argument("--per-episode", default=None, help="write per-episode metrics (JSON list) here (default: not written)")
    p.add_argument("--allow-partial", action="store_true", help="score a submission covering part of the split")
    p.add_argument("--success-distance", type=float, default=3.0, help="success radius in metres (strict <)")
    return p


def split_paths(args) -> tuple[Path, Path]:
    """(split file, connectivity folder) from the arguments; raises VLNError when they do not say."""
    if args.data is not None:
        data = Path(args.data)
    elif args.data_dir is not None and args.split is not None:
        data = DATASETS.get(args.dataset).split_file(args.data_dir, args.split)
    else:
        raise VLNError("name the split: --data FILE, or --data-dir DIR --split NAME (with --dataset)")
    if not data.is_file():
        raise FileNotFoundError(f"split file {data} does not exist")
    if args.connectivity is not None:
        return data, Path(args.connectivity)
    conn = data.resolve().parent.parent / "connectivity"
    if not conn.is_dir():
        raise VLNError(f"no --connectivity given and {conn} (beside the split's folder) does not exist")
    return data, conn


def validate_only(args, data: Path, conn: Path) -> dict:
    """Check the submission; print one OK line or raise InvalidSubmission listing every problem."""
    errors, n = check_submission_file(args.submission, data, NavGraph(conn), args.format)
    if errors:
        raise InvalidSubmission(args.submission, errors)
    fmt = submission_format(args.submission, args.format)
    print(f"OK: {args.submission} is a valid {fmt.upper()} submission for {data}: {n} trajectories, "
          "one per instruction, each starting at its episode's start and following the graph", flush=True)
    return {"valid": True, "trajectories": n}


def main(argv=None) -> dict:
    """Run the evaluation (or the check); return the summary that was printed."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    data, conn = split_paths(args)
    if args.validate_only:
        return validate_only(args, data, conn)
    evaluator = Evaluator.from_files(data, conn, success_distance=args.success_distance)
    result = evaluator.score_file(args.submission, fmt=args.format, allow_partial=args.allow_partial)
    if args.per_episode:
        atomic_write_json(args.per_episode, result.episodes, indent=1)
        logger.info("wrote %d per-episode records to %s", len(result.episodes), args.per_episode)
    print(json.dumps(result.summary, indent=2))
    return result.summary


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError))  # a bad input file: the message says which and why
