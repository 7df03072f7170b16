"""Does a VQA model use the image? Train it three times in one run and compare on held-out houses.

The three runs share every setting and the seed; they differ only in the visual input:
``real`` (the image's grid), ``zero`` (the grid zeroed: a question-only model) and ``shuffle``
(every image served another image's grid, the same mapping in training and validation). On the
synthetic corpus, ``val2014`` holds houses never seen in training.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from vln.cli import script_parser

CONTROLS = ("real", "zero", "shuffle")
#: CPU budgets (the small-data recipe): 15 epochs of batch 32 (1,230 steps on the default corpus's 2,612
#: questions) at lr 3e-3 on 3 x 3-pooled cells. MCAN keeps its recipe's shape (Adam 0.9/0.98/1e-9, warm-up
#: over epochs 1-3, x0.2 at epochs 10 and 12) at hidden 64, 1 layer, 2 heads; Pythia its own (Adamax,
#: constant rate) with a 256 question LSTM (the paper's 1,024 is most of its CPU cost), attention at
#: 1,024 and a 256-wide fusion. MCAN-small itself (hidden 512,
#: 6 layers) costs ~14 CPU-s per batch of 64 even at 6 x 9 cells: see the README.
BUDGETS = {
    "mcan": ["--hidden", "64", "--layers", "1", "--ff", "128", "--heads", "2", "--pool", "3", "--batch-size", "32",
             "--lr", "3e-3", "--threads", "1"],
    "pythia": ["--hidden", "256", "--lstm", "256", "--pool", "3", "--batch-size", "32", "--lr", "3e-3", "--threads", "1"],
}


def train_control(out: str | Path, train_args: list[str], control: str) -> dict:
    """Validation scores of one run ``<out>/<control>`` of :func:`vqa.train.main`."""
    from .train import main as train_main

    return train_main([*train_args, "--visual", control, "--out", str(Path(out) / control), "--eval-every", "0"])["scores"]


def learning_check(out: str | Path, train_args: list[str], jobs: int = 1) -> dict[str, dict]:
    """{control: validation scores} of three runs ``<out>/<control>`` of :func:`vqa.train.main`,
    ``jobs`` at a time in worker processes (1: one after the other in this process)."""
    if jobs <= 1:
        return {control: train_control(out, train_args, control) for control in CONTROLS}
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(min(jobs, len(CONTROLS)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = {control: pool.submit(train_control, out, train_args, control) for control in CONTROLS}
        return {control: f.result() for control, f in futures.items()}


def table(scores: dict[str, dict], by: str = "perAnswerType") -> str:
    """A Markdown table: one row per control, overall and one column per answer type (``by=
    "perQuestionType"``: per VQA question type, e.g. "is there a", "do you see a", "how many")."""
    types = sorted({t for s in scores.values() for t in s.get(by, {})})
    lines = ["| visual input | overall | " + " | ".join(types) + " |", "|---" * (len(types) + 2) + "|"]
    for control, s in scores.items():
        lines.append(f"| {control} | {s['overall']:.2f} | " + " | ".join(f"{s.get(by, {}).get(t, float('nan')):.2f}"
                                                                      for t in types) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    """Run the check; flags after ``--`` go to ``train_vqa.py`` (default: the model's CPU budget, :data:`BUDGETS`)."""
    p = script_parser(__doc__)
    p.add_argument("--out", required=True, help="folder of the three runs and scores.json")
    p.add_argument("--epochs", type=int, default=15, help="epochs of each run")
    p.add_argument("--model", default="mcan", choices=("mcan", "pythia"), help="model")
    p.add_argument("--jobs", type=int, default=1, help="controls trained at once, in worker processes")
    p.add_argument("train_args", nargs="*", help="more train_vqa.py flags (after --); default: the model's CPU budget")
    args = p.parse_args(argv)
    extra = args.train_args or BUDGETS[args.model]
    start = time.perf_counter()
    scores = learning_check(args.out, ["--model", args.model, "--epochs", str(args.epochs), "--no-progress", *extra],
                            args.jobs)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "scores.json").write_text(json.dumps(scores, indent=1))
    print(table(scores))
    print(table(scores, "perQuestionType"))
    print(f"{args.model}, {args.epochs} epochs, {args.jobs} job(s) at a time: {time.perf_counter() - start:.0f} s wall")
    return scores
