#!/usr/bin/env python
"""Run the README's 15-minute recipe on a synthetic world end to end, timing each phase.

The same commands as the README's "The 15-minute recipe on the synthetic world", as subprocesses:

1. phase 1: the speaker and the follower train side by side (one process, one thread each);
2. the augmentation paths (every training-house path of 4-7 edges, ``sample_aug_paths.py``) and
   one greedy speaker instruction for each (``speak.py``);
3. phase 2: the follower goes on from phase 1's on real and augmented batches in turn (2 threads).

Writes ``OUT/recipe.json`` (the settings, each phase's wall seconds, the speaker's BLEU-4, the
val_unseen SR curve of each follower phase read from its TensorBoard log, and phase 2's last
SR and SPL), prints it and one row of the README's table. Each step's log is ``OUT/<step>.log``;
a step that fails stops the run with its log's last lines. The world and its features are
generated first if missing (not timed), as ``make demo`` does.

Usage::

    python scripts/synthetic_recipe.py --seed 0 --out runs/recipe_s0                 # the default world
    python scripts/make_world.py --out data/synthetic_s11 --seed 11
    python scripts/synthetic_recipe.py --data-dir data/synthetic_s11 --seed 0 --out runs/recipe_s11_0
"""
from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

from vln.cli import script_parser

SCRIPTS = Path(__file__).resolve().parent
#: Settings shared by every training run of the recipe.
WORLD_FLAGS = ("--features", "synthetic_semantic", "--hidden", "128", "--word-embedding", "64", "--angle-harmonics", "4",
               "--eval-splits", "val_unseen", "--no-progress")
#: The follower's regularisation and inputs (both phases).
FOLLOWER_FLAGS = ("--dropout", "0.4", "--feature-dropout", "0.5", "--ml-weight", "1.0", "--weight-decay", "1e-3",
                  "--label-smoothing", "0.1", "--candidate-distance", "--candidate-lookahead", "--feedback", "teacher")
SPEAKER_FLAGS = ("--mode", "speaker", "--speaker-lr", "4e-3", "--speaker-dropout", "0.3")
PHASE1_FOLLOWER_FLAGS = ("--lr", "1e-3",)
PHASE2_FLAGS = ("--lr", "1e-3", "--lr-schedule", "cosine", "--threads", "2")
AUG_MAX_EDGES = 7  #: the synthetic world's routes have 4-7 edges


class StepFailed(RuntimeError):
    """A recipe step exited with an error (the message quotes its log)."""


def log_tail(path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a step's log ("" when it was never written)."""
    text = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(text[-lines:])


def start(name: str, args: list[str], out: Path) -> tuple[str, subprocess.Popen, Path]:
    """Start ``python <args>`` (a script and its flags) with stdout and stderr to ``out/<name>.log``."""
    log = out / f"{name}.log"
    handle = open(log, "w")
    proc = subprocess.Popen([sys.executable, *args], stdout=handle, stderr=subprocess.STDOUT)
    handle.close()
    return name, proc, log


def wait(*steps: tuple[str, subprocess.Popen, Path]) -> None:
    """Wait for every step; raise :class:`StepFailed` naming the first that failed."""
    codes = [(name, proc.wait(), log) for name, proc, log in steps]
    for name, code, log in codes:
        if code:
            raise StepFailed(f"step {name!r} exited with status {code}; the end of {log}:\n{log_tail(log)}")


def curve(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    """(iteration, value) of a scalar in a run's TensorBoard log, in iteration order."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    if tag not in acc.Tags().get("scalars", []):
        return []
    return [(int(e.step), round(float(e.value), 4)) for e in acc.Scalars(tag)]


def table_row(world: str, seed: int, result: dict) -> str:
    """One row of the README's table: world, seed, BLEU-4, the two SR curves, the walls."""
    w = result["wall_s"]
    fol = " / ".join(f"{v:.3f}" for _, v in result["follower_sr"])
    aug = " / ".join(f"{v:.3f}" for _, v in result["phase2_sr"])
    total = sum(w.values())
    return (f"| {world}, {seed} | {result['speaker_bleu4']:.3f} | {fol} | {aug} (SPL {result['phase2_spl']:.3f}) | "
            f"{w['phase1']:.0f} + {w['paths_and_instructions']:.0f} + {w['phase2']:.0f} = {total:.0f} s "
            f"({total / 60:.1f} min) |")


def run_recipe(data_dir: Path, seed: int, out: Path, speaker_iters: int, follower_iters: int, aug_iters: int,
               eval_every: int) -> dict:
    """Run the three phases into ``out``; returns what ``recipe.json`` holds."""
    out.mkdir(parents=True, exist_ok=True)
    train = str(SCRIPTS / "train_agent.py")
    common = [*WORLD_FLAGS, "--data-dir", str(data_dir), "--seed", str(seed)]
    walls = {}

    t0 = time.perf_counter()
    speaker = start("speaker", [train, *common, *SPEAKER_FLAGS, "--iters", str(speaker_iters),
                                "--eval-every", str(speaker_iters), "--out", str(out / "speaker")], out)
    follower = start("follower", [train, *common, *FOLLOWER_FLAGS, *PHASE1_FOLLOWER_FLAGS, "--iters", str(follower_iters),
                                  "--eval-every", str(eval_every), "--out", str(out / "follower")], out)
    wait(speaker, follower)
    walls["phase1"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    wait(start("aug_paths", [str(SCRIPTS / "sample_aug_paths.py"), "--connectivity", str(data_dir / "connectivity"),
                             "--scans-from", str(data_dir / "R2R" / "R2R_train.json"), "--max-edges", str(AUG_MAX_EDGES),
                             "--out", str(out / "aug_paths.json")], out))
    wait(start("speak", [str(SCRIPTS / "speak.py"), "--checkpoint", str(out / "speaker" / "latest.pt"),
                         "--data-dir", str(data_dir), "--paths", str(out / "aug_paths.json"),
                         "--out", str(out / "aug.json")], out))
    walls["paths_and_instructions"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    wait(start("phase2", [train, *common, *FOLLOWER_FLAGS, *PHASE2_FLAGS, "--aug-data", str(out / "aug.json"),
                          "--follower", str(out / "follower" / "latest.pt"), "--iters", str(aug_iters),
                          "--eval-every", str(eval_every), "--out", str(out / "phase2")], out))
    walls["phase2"] = time.perf_counter() - t0

    bleu = curve(out / "speaker", "val_unseen/bleu")
    phase2_sr = curve(out / "phase2", "val_unseen/sr")
    phase2_spl = curve(out / "phase2", "val_unseen/spl")
    if not bleu or not phase2_sr or not phase2_spl:
        raise StepFailed(f"no val_unseen validation in the TensorBoard logs of {out / 'speaker'} or {out / 'phase2'}")
    return {
        "data_dir": str(data_dir), "seed": seed,
        "iters": {"speaker": speaker_iters, "follower": follower_iters, "phase2": aug_iters},
        "flags": {"world": list(WORLD_FLAGS), "follower": list(FOLLOWER_FLAGS), "speaker": list(SPEAKER_FLAGS),
                  "phase1_follower": list(PHASE1_FOLLOWER_FLAGS), "phase2": list(PHASE2_FLAGS)},
        "wall_s": {k: round(v, 1) for k, v in walls.items()},
        "speaker_bleu4": bleu[-1][1],
        "follower_sr": curve(out / "follower", "val_unseen/sr"),
        "phase2_sr": phase2_sr,
        "phase2_spl": phase2_spl[-1][1],
    }


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--data-dir", type=Path, default=None, help="the world (default: the synthetic world)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--world-seed", type=int, default=0, help="seed of the world when it is generated here (0: the default world)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default: runs/recipe_seed<seed>); must not exist")
    ap.add_argument("--speaker-iters", type=int, default=1000, help="phase 1 speaker iterations")
    ap.add_argument("--follower-iters", type=int, default=1400, help="phase 1 follower iterations")
    ap.add_argument("--aug-iters", type=int, default=1000, help="phase 2 iterations (real and augmented batches in turn)")
    ap.add_argument("--eval-every", type=int, default=200, help="iterations between the followers' validations")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(SCRIPTS))
    from demo import ensure_features, ensure_world
    from vln.synthetic import default_data_dir

    data_dir = (args.data_dir or default_data_dir()).resolve()
    out = args.out or Path("runs") / f"recipe_seed{args.seed}"
    if out.exists():
        ap.error(f"--out {out} exists: the recipe times a fresh run (give a new folder)")
    if not 1 <= args.eval_every <= min(args.follower_iters, args.aug_iters):
        ap.error(f"--eval-every {args.eval_every} must be 1..{min(args.follower_iters, args.aug_iters)} "
                 "(the followers' iterations): the table reads their validations")
    ensure_world(data_dir, args.world_seed)
    ensure_features(data_dir)
    try:
        result = run_recipe(data_dir, args.seed, out, args.speaker_iters, args.follower_iters, args.aug_iters,
                            args.eval_every)
    except StepFailed as e:
        print(f"synthetic_recipe.py: {e}", file=sys.stderr)
        return 1
    from vln.io_utils import atomic_write_text

    atomic_write_text(out / "recipe.json", json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(table_row(data_dir.name, args.seed, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
