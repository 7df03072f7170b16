"""The quickstart's main job on the embedded default world, offline on a fresh machine.

1. Generate the synthetic Matterport-format world (``data/synthetic``) if it is not there, or
   rebuild it if an older generator wrote it (``vln.synthetic.FORMAT_VERSION``).
2. Extract its ``synthetic_semantic`` panoramic features if they are not there.
3. Score the reference policies on val_unseen: ``stop`` (STOP at the start), ``random_uniform``
   (each step uniform over the candidates and STOP), ``random_walk`` (as many uniform moves as a
   mean reference path has edges, then STOP; the trainer logs it too) and ``teacher`` (oracle).
4. Train the EnvDrop follower on the CPU for a short budget and score it the same way.

Usage: python scripts/demo.py [--data-dir DIR] [--houses N] [--iters N] [--seed S]

``--houses`` and ``--iters`` set the budget (the defaults are the README's: the 60-house world,
1,000 iterations, about 7 minutes on 2 CPU cores); the run folder goes under ``./runs``.
"""
from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

import gymnasium as gym

import envs  # noqa: F401 - registers vln/R2R-v0
from envs.baselines import BASELINES, evaluate_policy
from vln.cli import script_parser

logger = logging.getLogger("demo")
KEYS = ("sr", "spl", "ndtw", "nav_error", "length")
#: The demo table's rows, in order (see envs.baselines.BASELINES).
DEMO_BASELINES = ("stop", "random_uniform", "random_walk", "teacher")
#: The follower recipe that learns the synthetic world in minutes on a CPU: teacher-forced IL alone
#: (no A2C batch) with a small model (hidden 128, word embedding 64), dropout 0.4, feature dropout
#: 0.5, IL weight 1, lr 1e-3, four heading harmonics, weight decay 1e-3 and label smoothing 0.1
#: (val_unseen SR 0.76-0.77 after 1,000 iterations in three seeds; README, "The 15-minute recipe").
DEMO_RECIPE = ("--hidden", "128", "--word-embedding", "64", "--lr", "1e-3", "--dropout", "0.4", "--feature-dropout", "0.5",
               "--ml-weight", "1.0", "--feedback", "teacher", "--angle-harmonics", "4", "--weight-decay", "1e-3",
               "--label-smoothing", "0.1")


def ensure_world(data_dir: Path, seed: int, houses: int | None = None) -> None:
    """Generate the world if it is missing, or regenerate it (and its features) if an older generator wrote it."""
    from vln.data_root import ensure_default_world
    from vln.synthetic import regenerate_world, stale_world_message

    if (data_dir / "world.json").exists():
        stale = stale_world_message(data_dir)
        if not stale:
            logger.info("using the synthetic world in %s", data_dir)
            return
        logger.warning("%s; regenerating it", stale)
        shutil.rmtree(data_dir / "features", ignore_errors=True)  # derived from the old world
        regenerate_world(data_dir)
        return
    if (data_dir / "connectivity" / "scans.txt").exists():
        logger.info("using the data root %s", data_dir)
        return
    kwargs = {} if houses is None else {"houses": houses}
    ensure_default_world(data_dir, seed=seed, **kwargs)  # under the build lock: runs started together build it once


def ensure_features(data_dir: Path, encoder: str = "synthetic_semantic") -> None:
    from features.store import default_store_path

    out = default_store_path(data_dir, encoder)
    if out.exists():
        return
    import extract_features

    extract_features.main(["--encoder", encoder, "--scans-dir", str(data_dir), "--connectivity",
                           str(data_dir / "connectivity"), "--out", str(out), "--no-progress"])


def main(argv=None) -> int:
    ap = script_parser(__doc__)
    ap.add_argument("--data-dir", type=Path, default=None, help="data root (default: the synthetic world)")
    ap.add_argument("--iters", type=int, default=1000, help="follower training iterations (CPU: ~0.4 s each)")
    ap.add_argument("--houses", type=int, default=None,
                    help="houses of the world when it is generated here (default: vln.synthetic's 60)")
    ap.add_argument("--seed", type=int, default=0, help="seed of the world (when generated), the policies and training")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from vln.synthetic import default_data_dir

    data_dir = args.data_dir or default_data_dir()
    ensure_world(data_dir, args.seed, args.houses)
    ensure_features(data_dir)
    world = gym.make("vln/R2R-v0", data_dir=data_dir, split="val_unseen", features="synthetic_semantic",
                     feature_mode="index").unwrapped.world
    table = {}
    for name in DEMO_BASELINES:
        s = evaluate_policy(world, BASELINES.get(name).policy(world), seed=args.seed).summary
        table[name] = {k: round(float(s[k]), 3) for k in KEYS}
    legend = {name: BASELINES.get(name).description for name in DEMO_BASELINES}
    print(json.dumps({"baselines": legend, "val_unseen": table}, indent=1))

    import train_agent

    result = train_agent.main([
        "--features", "synthetic_semantic", "--data-dir", str(data_dir), "--iters", str(args.iters), *DEMO_RECIPE,
        "--eval-every", str(max(args.iters // 4, 1)),
        "--eval-splits", "val_unseen", "--seed", str(args.seed), "--no-progress",
    ])
    final = result["history"][-1] if result.get("history") else {}
    table["follower"] = {k.split("/", 1)[1]: round(float(v), 3) for k, v in final.items()
                         if k.startswith("val_unseen/") and k.split("/", 1)[1] in KEYS}
    print(json.dumps({"val_unseen": table, "run_dir": str(result["run_dir"])}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
