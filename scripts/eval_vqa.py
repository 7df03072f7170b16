#!/usr/bin/env python
"""Score VQA results with the official VQA accuracy (or answer a split with a checkpoint first).

    python scripts/eval_vqa.py --results R.json --questions Q.json --annotations A.json [--per-question FILE]
    python scripts/eval_vqa.py --checkpoint RUN --split val2014 [--export R.json]

Prints ``{"overall", "perAnswerType", "perQuestionType"}`` as JSON (percentages, 2 decimals).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vln.cli import script_parser  # noqa: E402


def main(argv=None) -> dict:
    p = script_parser(__doc__)
    p.add_argument("--results", help="results file [{question_id, answer}] (default: none; needs --annotations)")
    p.add_argument("--questions", help="official questions file, its ids checked against the annotations' (default: not checked)")
    p.add_argument("--annotations", help="official annotations file (default: none; needs --results)")
    p.add_argument("--per-question", help="write {question_id: accuracy} here (default: not written)")
    p.add_argument("--checkpoint", help="a run folder or checkpoint: answer --split with it (default: none)")
    p.add_argument("--split", help="split answered with --checkpoint, e.g. val2014, test2015 (default: none)")
    p.add_argument("--data-dir", help="question files of --split (default: the run's)")
    p.add_argument("--features", help="image grid store (default: the run's)")
    p.add_argument("--export", help="write the checkpoint's answers here in the official results format (default: not written)")
    p.add_argument("--device", default="auto", help="cpu, cuda or auto")
    args = p.parse_args(argv)
    from vln.io_utils import atomic_write_json

    from vqa.evaluate import score_files, write_per_question

    if args.checkpoint:
        if not args.split:
            p.error("--checkpoint needs --split")
        from vqa.checkpoint_eval import evaluate_checkpoint

        results, scores = evaluate_checkpoint(args.checkpoint, args.split, args.data_dir, args.features, device=args.device)
        if args.export:
            atomic_write_json(args.export, results)
    else:
        if not (args.results and args.annotations):
            p.error("give --results and --annotations (or --checkpoint and --split)")
        scores = score_files(args.results, args.annotations, args.questions)
    if "perQuestion" in scores:
        if args.per_question:
            write_per_question(args.per_question, scores["perQuestion"])
        scores = {k: v for k, v in scores.items() if k != "perQuestion"}
    print(json.dumps(scores, indent=1))
    return scores


if __name__ == "__main__":
    from vln.errors import run_script

    run_script(main)
