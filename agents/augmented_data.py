"""Training the follower on real and augmented data (``train_agent.py --aug-data FILE``), as
EnvDrop's ``--train auglistener --aug FILE``.

``FILE`` is an R2R-format JSON list of paths with instructions: :mod:`scripts.speak`'s output for
paths sampled by :mod:`scripts.sample_aug_paths`, or released augmentation data such as
Speaker-Follower's. Its instructions are tokenised with the training vocabulary (words outside
it become ``<UNK>``), and its paths are checked against the connectivity graphs.

Optimiser steps alternate, as EnvDrop's default (``accumulate_grad`` off): iterations 1, 3, 5, ...
train on a batch of real training episodes (IL weight ``ml_weight``, environmental dropout
``follower_env_dropout``, plus A2C with ``feedback="sample"``), iterations 2, 4, 6, ... on a batch of
the file's episodes (IL weight ``aug_ml_weight``, no environmental dropout: the instructions were
written for the whole features). ``--iters`` counts both kinds, so a run of 80,000 iterations takes
40,000 steps of each.
"""
from __future__ import annotations

import logging
from pathlib import Path

from envs.batch import NavBatch
from vln.datasets import load_r2r

from .data import episodes_world
from .sampler import EpisodeSampler

logger = logging.getLogger(__name__)


class AugmentedDataTask:
    """The augmented-data part of a :class:`agents.trainer.Trainer` run (``cfg.aug_data``).

    Attributes:
        aug_world: :class:`envs.world.NavWorld` of the file's episodes (split ``"aug"``).
        aug_sampler: epoch-wise shuffled batches of them (saved with the run, for exact resume).
    """

    def __init__(self, trainer):
        cfg = trainer.cfg
        self.trainer = trainer
        file = Path(cfg.aug_data)
        episodes = load_r2r(file)  # every path instructed (the world checks them against the graphs)
        self.aug_world = episodes_world(trainer.train_world, episodes, "aug")
        self.aug_sampler = EpisodeSampler(len(self.aug_world.episodes), cfg.batch_size, cfg.seed + 1)  # as back-translation's
        self.aug_nav = NavBatch(self.aug_world, cfg.batch_size)
        logger.info("augmented data: %d episodes (%d paths, %d scans) from %s", len(episodes),
                    len({e.path_id for e in episodes}), len({e.scan for e in episodes}), file)

    def train_iteration(self) -> dict:
        """One optimiser step on a real batch (even ``trainer.iteration``) or an augmented one (odd)."""
        t = self.trainer
        t.optimizer.zero_grad(set_to_none=True)
        if t.iteration % 2 == 0:
            parts, prefix = t.backward_real_batch(), ""
        else:
            parts, prefix = t.backward_batch(self.aug_nav, self.aug_sampler, t.cfg.aug_ml_weight), "aug_"
        t.optimizer_step()
        return {prefix + k: float(v.detach()) for k, v in parts.items()}

    def state(self) -> tuple[dict, dict]:
        return {}, {"aug_sampler": self.aug_sampler.state_dict()}

    def load(self, tensors: dict, meta: dict, path) -> None:
        self.aug_sampler.load_state_dict(meta["aug_sampler"])
