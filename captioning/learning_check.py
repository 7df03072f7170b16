"""Does the captioner learn, and does self-critical training help? Three trainings per seed, one run.

Per seed, on a synthetic corpus (held-out val and test houses):

1. cross-entropy (XE) for ``--xe-epochs`` (``xe/``), which writes ``best_val.pt`` and ``latest.pt``;
2. from one of them (``--start best|latest``), SCST for ``--scst-epochs`` (``scst/``) and, from the
   *same* checkpoint, XE continuing for as many epochs (``xe_cont/``): both val curves start from one
   set of weights, optimiser state and iteration;
3. on the test house: CIDEr-D (pycocoevalcap's formula, df from the test references) of the start
   checkpoint, of both final models and of both models chosen by val CIDEr-D among the epochs after
   the split (each run's ``best_val.pt``, as the released code keeps the best-on-val model; test never
   chooses), pycocoevalcap's CIDEr through its PTB tokenizer (needs Java), the final SCST model on
   shuffled images (each image decoded from another's grid) and the best constant caption (the
   training caption scoring highest on the training set). Both runs also score the test house at
   every epoch (``--monitor-split test``): the test curves beside the val curves.

Every training is ``captioning.train`` with the given flags (unknown flags of this script are passed
to all three); ``OUT/seed<N>/result.json`` holds a seed's curves, scores and wall times (seeds can
run as separate processes: a later call with all of them reuses these files), ``summary.json`` all
of them, and a Markdown table is printed.
"""
from __future__ import annotations

import argparse
import logging
import math
import shutil
import time
from pathlib import Path

import torch

from vln.cli import script_parser

logger = logging.getLogger(__name__)

#: The small model of the synthetic learning check (d 64, 1 + 1 layers): minutes per seed on a CPU.
SMALL = ["--d-model", "64", "--n-layers", "1", "--n-heads", "4", "--d-ff", "128", "--batch-images", "10",
         "--beam", "2", "--warmup", "50", "--lr", "2e-3", "--no-progress", "--log-every", "10"]


def build_parser():
    p = script_parser(__doc__)
    p.add_argument("--out", required=True, help="folder of the runs and summary.json (an existing run resumes)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds")
    p.add_argument("--data-dir", help="corpus folder with captions/dataset_coco.json (default: a corpus of --houses "
                   "built under OUT/corpus<houses>)")
    p.add_argument("--houses", type=int, default=48, help="houses of the default corpus (4:1:1 train/val/test; 12 "
                   "houses are too few for SCST to beat cross-entropy on held-out houses, see the README)")
    p.add_argument("--features", help="image grid store of the corpus (default: semantic grids built with it)")
    p.add_argument("--xe-epochs", type=int, default=30, help="cross-entropy epochs before the split")
    p.add_argument("--scst-epochs", type=int, default=10, help="epochs of SCST and of XE continuing")
    p.add_argument("--start", choices=("best", "latest"), default="best",
                   help="SCST and XE continuing start from the XE run's best_val.pt or its latest.pt")
    p.add_argument("--scst-lr", type=float, default=2e-4, help="SCST learning rate (the small synthetic recipe)")
    p.add_argument("--pycoco", action=argparse.BooleanOptionalAction, default=True,
                   help="also score with pycocoevalcap's CIDEr (PTB tokenizer, needs Java)")
    return p


def house_corpus(root: Path, houses: int = 48) -> tuple[Path, Path]:
    """(corpus dir, grid store) of the learning-check corpus: ``houses`` houses split about 4:1:1
    into train, val and test (up to 24 images a house: 6 viewpoints x 4 headings; 48 houses = 724
    training images, 184 val, 188 test; 12 houses = 184 / 40 / 40), 7 x 7 semantic grids; built once
    under ``root`` (seconds)."""
    from features.grid_presets import make_preset
    from features.semantic_grid import write_semantic_grid_store
    from vlcorpus import make_vl_corpus
    from vln.synthetic import generate_world

    corpus, store = root / "vl", root / "semantic.grids"
    if not (corpus / "captions" / "dataset_coco.json").exists():
        generate_world(root / "world", houses=houses, seed=7, face_size=32,
                       paths_per_house={"train": 1, "val_seen": 1, "val_unseen": 1, "test": 1})
        make_vl_corpus(root / "world", corpus, seed=3, image_size="tiny", viewpoints_per_house=6)
    if not store.exists():
        write_semantic_grid_store(corpus, make_preset("custom", size=(224, 224), pooled=True), store)
    return corpus, store


def train(args: list[str]) -> tuple[dict, float]:
    from .train import main as train_main

    t = time.perf_counter()
    out = train_main(args)
    return out, time.perf_counter() - t


def test_scores(model, data, beam: int, pycoco: bool) -> dict:
    """CIDEr-D (x1, df from the test references) and, with ``pycoco``, pycocoevalcap's CIDEr."""
    from .train import caption_split, cider_of

    results = caption_split(model, data, "test", beam, torch.device("cpu"))
    out = {"cider_d": cider_of(results, data.references("test"))}
    if pycoco:
        from .metrics import score_captions

        raw = {im["cocoid"]: [s["raw"] for s in im["sentences"]] for im in data.splits["test"]}
        scores = score_captions(results, raw)
        out.update(cider_pycoco=scores["CIDEr"], bleu4_pycoco=scores["Bleu_4"], meteor_pycoco=scores["METEOR"])
    return out


def run_seed(seed: int, out: Path, base: list[str], a) -> dict:
    from training.checkpoint import load_checkpoint

    from .evaluate import learning_check, load_model
    from .train import FORMAT

    xe, xe_t = train([*base, "--seed", str(seed), "--epochs", str(a.xe_epochs), "--scst-after", "-1",
                      "--out", str(out / "xe")])
    start = out / ("start_best_val.pt" if a.start == "best" else "start_latest.pt")
    if not start.exists():
        shutil.copyfile(xe["run"].best_path("val") if a.start == "best" else xe["run"].latest_path, start)
    model0, _, _ = load_model(start)
    per_epoch = math.ceil(len(xe["data"].enc["train"].image_ids) / xe["cfg"].batch_images)
    start_epoch = load_checkpoint(start, fmt=FORMAT)[1]["iteration"] // per_epoch
    end = start_epoch + a.scst_epochs
    common = [*base, "--seed", str(seed), "--epochs", str(end), "--start-from", str(start)]
    scst, scst_t = train([*common, "--scst-after", str(start_epoch), "--scst-lr", str(a.scst_lr),
                          "--monitor-split", "test", "--out", str(out / "scst")])
    cont, cont_t = train([*common, "--scst-after", "-1", "--monitor-split", "test", "--out", str(out / "xe_cont")])
    beam = xe["cfg"].beam
    check = learning_check(scst["model"], scst["data"], "test", beam, torch.device("cpu"), seed=seed)
    return {"seed": seed, "start_epoch": start_epoch, "end_epoch": end,
            "val_xe": xe["val_cider"], "val_xe_cont": cont["val_cider"][-a.scst_epochs:],
            "val_scst": scst["val_cider"][-a.scst_epochs:],
            "test_curve_xe_cont": cont["monitor_cider"], "test_curve_scst": scst["monitor_cider"],
            "test_start": test_scores(model0, xe["data"], beam, a.pycoco),
            "test_xe_cont": test_scores(cont["model"], cont["data"], beam, a.pycoco),
            "test_scst": test_scores(scst["model"], scst["data"], beam, a.pycoco),
            "best_epoch_xe_cont": cont["best"]["epoch"], "best_epoch_scst": scst["best"]["epoch"],
            "test_xe_cont_val_best": test_scores(load_model(cont["run"].best_path("val"))[0], cont["data"], beam,
                                                 a.pycoco),
            "test_scst_val_best": test_scores(load_model(scst["run"].best_path("val"))[0], scst["data"], beam,
                                              a.pycoco),
            "test_scst_shuffled": check["cider_shuffled"], "test_constant": check["cider_constant"],
            "constant_caption": check["constant_caption"],
            "wall_s": {"xe": xe_t, "scst": scst_t, "xe_cont": cont_t}}


def seed_result(seed: int, out: Path, base: list[str], a) -> dict:
    """:func:`run_seed`'s result, kept in ``OUT/seed<N>/result.json`` (seeds can run as separate
    processes; a later call with all the seeds reads them and prints the table)."""
    from vln.io_utils import atomic_write_json, read_json

    path = out / "result.json"
    if path.exists():
        return read_json(path)
    row = run_seed(seed, out, base, a)
    atomic_write_json(path, row)
    return row


def table(rows: list[dict]) -> str:
    """The README's Markdown table of :func:`run_seed` results."""
    def sc(d):
        return f"{d['cider_d']:.3f}" + (f" ({d['cider_pycoco']:.3f})" if "cider_pycoco" in d else "")

    head = ("| seed | start (XE epoch) | test: XE start | XE continuing, last | XE + SCST, last | XE continuing, "
            "val-chosen (epoch) | XE + SCST, val-chosen (epoch) | SCST on shuffled images | best constant caption | "
            "wall XE / SCST / XE cont. (s) |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"| {r['seed']} | {r['start_epoch']} | {sc(r['test_start'])} | {sc(r['test_xe_cont'])} | "
             f"{sc(r['test_scst'])} | {sc(r['test_xe_cont_val_best'])} ({r['best_epoch_xe_cont']}) | "
             f"{sc(r['test_scst_val_best'])} ({r['best_epoch_scst']}) | {r['test_scst_shuffled']:.3f} | "
             f"{r['test_constant']:.3f} | "
             f"{r['wall_s']['xe']:.0f} / {r['wall_s']['scst']:.0f} / {r['wall_s']['xe_cont']:.0f} |" for r in rows]
    return "\n".join([head, *lines])


def curves(rows: list[dict]) -> str:
    """Val and test CIDEr-D per epoch after the split, XE continuing vs SCST, two lines per seed."""
    def fmt(c):
        return " ".join(f"{v:.2f}" for _, v in c)

    return "\n".join(f"seed {r['seed']} (from epoch {r['start_epoch']}) val: XE {fmt(r['val_xe_cont'])} | "
                     f"SCST {fmt(r['val_scst'])}\nseed {r['seed']} test: XE {fmt(r['test_curve_xe_cont'])} | "
                     f"SCST {fmt(r['test_curve_scst'])}" for r in rows)


def main(argv=None) -> dict:
    a, extra = build_parser().parse_known_args(argv)
    out = Path(a.out)
    if a.data_dir is None:
        data_dir, features = house_corpus(out / f"corpus{a.houses}", a.houses)
    else:
        data_dir, features = Path(a.data_dir), a.features or "synthetic_semantic_grid"
    base = [*SMALL, "--data-dir", str(data_dir), "--features", str(features), *extra]
    rows = [seed_result(s, out / f"seed{s}", base, a) for s in a.seeds]
    summary = {"settings": {**vars(a), "train_args": base}, "seeds": rows,
               "scst_gain": [r["test_scst"]["cider_d"] - r["test_xe_cont"]["cider_d"] for r in rows],
               "scst_gain_over_start_val_chosen": [r["test_scst_val_best"]["cider_d"] - r["test_start"]["cider_d"]
                                                   for r in rows]}
    from vln.io_utils import atomic_write_json

    atomic_write_json(out / "summary.json", summary)
    print(table(rows))
    print(curves(rows))
    return summary
