#!/usr/bin/env python
"""Train the EnvDrop follower (IL + A2C), the speaker, or the follower with back-translation.

Examples::

    python scripts/train_agent.py --features synthetic_semantic --iters 2000      # synthetic world
    python scripts/train_agent.py --features clip_r50x4 --dataset r2r --data-dir ../shared/data
    python scripts/train_agent.py --features clip_r50x4 --dataset r2r --data-dir DIR --mode bt \\
        --speaker runs/speaker__clip_r50x4__0__.../best_val_unseen.pt

The run directory (``--out``) holds params.json, latest.pt, best_<split>.pt and TensorBoard logs
(``tensorboard --logdir RUN_DIR/tb``). Running again with the same ``--out`` resumes exactly from
latest.pt with the settings in its params.json (``--iters`` may be raised; other flags that differ
from the saved settings are refused); latest.pt is written every ``--latest-every`` iterations or
``--latest-minutes`` minutes, whichever comes first.
"""
from __future__ import annotations

import json
import logging
import sys

from agents.config import TrainConfig
from training.config import parse_config
from agents.checkpoint import FORMAT
from training.run import RunDir
from vln.cli import first_line
from vln.errors import VLNError, run_script

logger = logging.getLogger(__name__)


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def main(argv=None) -> dict:
    """Train; returns ``{"run_dir", "iteration", "history", "best"}``."""
    cfg, given = parse_config(TrainConfig, argv, first_line(__doc__))
    cfg.check()
    if cfg.out:  # an existing run: its saved settings, with the flags given now checked against them
        cfg = RunDir(cfg.out, fmt=FORMAT).resolve_config(cfg, given)
    cfg.check_given(given)  # after the saved settings: a resumed run's mode is its params.json's
    setup_logging()
    from agents.trainer import Trainer

    trainer = Trainer(cfg)
    logger.info("run directory %s (%s, %d training episodes, features %s, device %s)", trainer.out, trainer.cfg.mode,
                len(trainer.train_world.episodes), trainer.cfg.features, trainer.device)
    history = trainer.train()
    result = {"run_dir": str(trainer.out), "iteration": trainer.iteration, "history": history, "best": trainer.best}
    if history:
        print(json.dumps({"run_dir": str(trainer.out), "last": history[-1], "best": trainer.best}, indent=1))
    return result


if __name__ == "__main__":
    # missing data or features (the message names the command that builds them), settings that differ from a
    # resumed run's, an unreadable checkpoint, a vocabulary built by another tokenizer, features of another
    # encoder (VLNError): one line each
    run_script(main, (VLNError, FileNotFoundError))
