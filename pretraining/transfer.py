"""Does pre-training transfer? Table 8's comparison on the synthetic corpus, on a CPU.

One pre-training run (:mod:`pretraining.learning_check`'s CPU budget with ``--backbone``: a small CLIP
ResNet from random weights trained on 96 x 128 images, Transformer ``small``), or ``--init`` an existing one; then, for each seed,
VQA fine-tuning on the same seeded fraction of the synthetic VQA training questions from two starts
at the same budget (steps, batch, learning rates):

* pre-trained: the run's Transformer and backbone, a new answer head;
* from scratch: the same architecture, vocabulary and initialisation recipe, none of its weights
  (``--from-scratch``: the backbone restarts from its own initial weights too, as the
  pre-training did).

Both are scored with the official VQA accuracy on ``val2014`` (the held-out houses). The answer
table is counted on the whole training split, so both starts predict over the same answers. Like
LXMERT's, the synthetic pre-training data hold the training houses' VQA questions (the ``vqa``
source of ``lxmert/mscoco_train.json``): only the validation houses are new to both starts.
"""
from __future__ import annotations

import json
import statistics
from pathlib import Path

from vln.cli import script_parser

ANSWER_TYPES = ("yes/no", "number", "other")


def table(rows: list[dict]) -> str:
    """Markdown table: one row per seed and start, then the mean margin."""
    lines = ["| seed | start | overall | yes/no | number | other |", "|---|---|---|---|---|---|"]
    for r in rows:
        for start in ("pretrained", "scratch"):
            s = r[start]
            lines.append(f"| {r['seed']} | {'pre-trained' if start == 'pretrained' else 'from scratch'} | "
                         f"{s['overall']:.2f} | " + " | ".join(f"{s['perAnswerType'].get(t, float('nan')):.2f}"
                                                              for t in ANSWER_TYPES) + " |")
    margins = [r["pretrained"]["overall"] - r["scratch"]["overall"] for r in rows]
    lines.append(f"| margin (pre-trained - scratch) | per seed | {', '.join(f'{m:+.2f}' for m in margins)} | "
                 f"mean {statistics.mean(margins):+.2f} | | |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    """Run the comparison; flags after ``--`` go to ``scripts/finetune.py`` (both starts)."""
    from .finetune import main as finetune
    from .learning_check import main as pretrain_check

    p = script_parser(__doc__)
    p.add_argument("--out", required=True, help="folder of the runs, results.json and table.md")
    p.add_argument("--init", default=None, help="an existing pre-training checkpoint.pt (default: pre-train first)")
    p.add_argument("--pretrain-steps", type=int, default=400, help="pre-training steps when no --init")
    p.add_argument("--corpus", default=None, help="synthetic corpus folder (default: built on first use)")
    p.add_argument("--fraction", type=float, default=0.1, help="fraction of the VQA training questions fine-tuned on")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="fine-tuning seeds (subset, head, order)")
    p.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs over the fraction")
    p.add_argument("--batch-size", type=int, default=32, help="fine-tuning batch")
    p.add_argument("--lr", type=float, default=5e-4, help="AdamW peak learning rate of both starts")
    p.add_argument("finetune_args", nargs="*", help="more scripts/finetune.py flags (after --)")
    args = p.parse_args(argv)
    out = Path(args.out)
    corpus = ["--corpus", args.corpus] if args.corpus else []
    init = args.init
    if init is None:
        pretrain_check(["--out", str(out / "pretrain"), "--backbone", "--epochs", "20",  # the schedule of the README's table
                        *(["--data-dir", args.corpus] if args.corpus else []),
                        "--", "--steps", str(args.pretrain_steps)])  # fine-tuning trains the backbone on images
        init = str(out / "pretrain" / "run" / "checkpoint.pt")
    rows = []
    for seed in args.seeds:
        row = {"seed": seed}
        for start in ("pretrained", "scratch"):
            result = finetune(["--task", "vqa", "--init", init, *corpus, "--out", str(out / f"{start}_seed{seed}"),
                               "--train-fraction", str(args.fraction), "--seed", str(seed), "--epochs",
                               str(args.epochs), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
                               "--threads", "1", "--workers", "1", "--no-progress", "--eval-every", "0",
                               *(["--from-scratch"] if start == "scratch" else []), *args.finetune_args])
            row[start] = result["scores"]
            row["train_examples"] = result["train_examples"]
        rows.append(row)
    md = table(rows)
    (out / "results.json").write_text(json.dumps({"init": init, "fraction": args.fraction, "rows": rows}, indent=1))
    (out / "table.md").write_text(md + "\n")
    print(md)
    return {"rows": rows, "table": md}
