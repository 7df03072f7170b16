"""Back-translation with environmental dropout (``train_agent.py --mode bt``), as EnvDrop's
``bt_envdrop`` schedule.

Every iteration accumulates the gradients of two batches before one optimiser step:
1. a batch of real training episodes: IL (weight ``ml_weight``) + A2C, as ``--mode follower``;
2. a batch of augmentation paths (shortest paths of 4-6 edges sampled on the training scans by
   :func:`vln.datasets.aug_paths.sample_aug_paths`): one environmental-dropout mask per
   environment (rate ``env_dropout``) is drawn, the frozen speaker writes each path's instruction
   greedily from the masked features, and the follower trains on those instructions under the
   same mask: IL with weight ``aug_ml_weight`` on one such batch, A2C on another (each with its
   own mask and instructions, as the original's rollouts with a speaker).

The speaker comes from ``--speaker CKPT``, or is trained first for ``--speaker-iters`` iterations
in the same run and kept as ``<run>/speaker.pt``. ``--follower CKPT`` starts the follower from a
trained one.
"""
from __future__ import annotations

import logging

import numpy as np
import torch

from envs.batch import NavBatch
from envs.world import NavWorld
from features.provenance import CHECKPOINT_KEY, check_checkpoint_store
from vln.datasets.aug_paths import MAX_EDGES, MIN_EDGES, sample_aug_paths

from .checkpoint import save_checkpoint
from .data import episodes_world
from .envdrop import EnvDropout
from .sampler import EpisodeSampler
from .speaker_task import SpeakerTask, read_speaker, require_same_encoder
from .trajectory import teacher_trajectories

logger = logging.getLogger(__name__)


#: Below this ``<split>/distinct`` (fraction of paths given an instruction of their own) a speaker
#: is reported as not grounded: an ungrounded one scored 0.00 on the synthetic val_unseen, a
#: grounded one 1.00.
MIN_DISTINCT = 0.5


def collapsed_splits(metrics: dict, threshold: float = MIN_DISTINCT) -> list[str]:
    """The ``<split>/distinct`` keys of speaker validation ``metrics`` below ``threshold``."""
    return [k for k, v in metrics.items() if k.endswith("/distinct") and v < threshold]


def augmentation_world(train_world: NavWorld, num: int, seed: int, min_edges: int = MIN_EDGES,
                       max_edges: int = MAX_EDGES) -> NavWorld:
    """A :class:`NavWorld` of ``num`` sampled paths of ``min_edges..max_edges`` edges on the training
    scans (all of them when fewer exist), with empty instructions, the training tokenizer and the
    same feature store."""
    records = sample_aug_paths(train_world.navgraph, train_world.scans, num, seed, min_edges, max_edges, clip=True)
    if len(records) < num:
        logger.info("the training scans have only %d augmentation paths (asked for %d): using all", len(records), num)
    episodes = [ep for r in records for ep in r.episodes(source="<augmentation paths>", uninstructed="empty")]
    return episodes_world(train_world, episodes, "aug")


class BackTranslationTask:
    """The back-translation part of a :class:`agents.trainer.Trainer` run."""

    def __init__(self, trainer):
        cfg = trainer.cfg
        self.trainer = trainer
        self.speaker_task = SpeakerTask(trainer)
        self.speaker = self.speaker_task.speaker
        self.speaker_ready = False
        if cfg.speaker:
            scfg, state, meta = read_speaker(cfg.speaker, trainer.device, trainer.tokenizer)
            require_same_encoder(scfg, self.speaker.cfg, cfg.speaker)
            check_checkpoint_store(trainer.store, meta, cfg.speaker, cfg.allow_random_features)
            self.speaker.load_state_dict(state)
            self.speaker_ready = True
            logger.info("speaker from %s", cfg.speaker)
        self.aug_world = augmentation_world(trainer.train_world, cfg.aug_paths, cfg.seed, cfg.aug_min_edges,
                                            cfg.aug_max_edges)
        self.aug_sampler = EpisodeSampler(len(self.aug_world.episodes), cfg.batch_size, cfg.seed + 1)
        self.aug_nav = NavBatch(self.aug_world, cfg.batch_size)
        rate = cfg.env_dropout if trainer.bank.dim else 0.0
        self.env_dropout = EnvDropout(rate, cfg.env_dropout_per) if rate > 0 else None
        logger.info("back-translation on %d augmentation paths of %d training scans",
                    len(self.aug_world.episodes), len(trainer.train_world.scans))

    # ------------------------------------------------------------------ preparation
    @property
    def speaker_path(self):
        return self.trainer.out / "speaker.pt"

    def prepare(self) -> None:
        """Before the first iteration: make sure there is a speaker (``--speaker``,
        ``<run>/speaker.pt`` of an interrupted run, or train one now)."""
        t, cfg = self.trainer, self.trainer.cfg
        if self.speaker_ready:
            return
        if self.speaker_path.exists():
            self.speaker.load_state_dict(read_speaker(self.speaker_path, t.device, t.tokenizer)[1])
        else:
            self.train_speaker(cfg.speaker_iters)
        self.speaker_ready = True

    def train_speaker(self, iters: int) -> None:
        """Train the speaker for ``iters`` iterations on the training split; save ``speaker.pt``."""
        t = self.trainer
        sampler = EpisodeSampler(len(t.train_world.episodes), t.cfg.batch_size, t.cfg.seed + 2)
        logger.info("training the speaker for %d iterations before back-translation", iters)
        loss = float("nan")
        for i in range(iters):
            loss = self.speaker_task.step(t.nav, sampler.next())
            if (i + 1) % t.cfg.log_every == 0:
                logger.info("speaker iter %d  loss %.4f", i + 1, loss)
        bleu = self.speaker_task.evaluate()
        logger.info("speaker after %d iterations: %s", iters,
                    "  ".join(f"{k} {v:.4f}" for k, v in bleu.items() if not isinstance(v, str)))
        for key in collapsed_splits(bleu):
            logger.warning("the speaker writes the same instruction for most %s paths (%s %.2f): it has not "
                           "grounded its words yet, and back-translation on its instructions is unlikely to "
                           "help; train it longer (--speaker-iters) or pass a better one (--speaker)",
                           key.split("/")[0], key, bleu[key])
        tensors, meta = self.speaker_task.state()
        save_checkpoint(self.speaker_path, tensors, {"vocab": list(t.tokenizer.vocab), "task": meta,
                                                     "config": t.cfg.to_dict(), "speaker_iters": iters,
                                                     "history": [bleu], CHECKPOINT_KEY: t.feature_record})

    # ------------------------------------------------------------------ training
    def augmented_batch(self) -> tuple[np.ndarray, torch.Tensor | None]:
        """Sample augmentation paths, draw their masks and let the speaker write their instructions.

        Returns (episode indices into ``aug_world``, (B, D) mask or None).
        """
        t = self.trainer
        idx = self.aug_sampler.next()
        mask = None if self.env_dropout is None else self.env_dropout.sample(len(idx), t.bank.dim, t.device)
        self.aug_nav.reset_envs(np.arange(len(idx)), idx)
        self.speaker.eval()
        traj = teacher_trajectories(t.bank, self.aug_nav, mask)
        ids, lengths = self.speaker.generate(traj.views, traj.actions, traj.lengths, max_length=t.cfg.max_decode_length)
        self.aug_world.set_instructions(idx, ids.cpu().numpy(), lengths.cpu().numpy())
        return idx, mask

    def backward_augmented(self) -> dict:
        """Accumulate the gradients of the follower's losses on augmented data; returns the loss tensors.

        With teacher-forced IL + A2C (EnvDrop's), each of the two rollouts takes a batch of its own,
        with its own environmental-dropout mask and instructions, as the original's rollouts with
        a speaker (each resets the environment to the next batch and has the speaker write it);
        otherwise one batch serves the one rollout.
        """
        t, cfg = self.trainer, self.trainer.cfg
        idx, mask = self.augmented_batch()
        if not t.separate_rl_batch:
            return t.backward_step(self.aug_nav, idx, None, cfg.aug_ml_weight, env_mask=mask)
        parts = t.il_step(self.aug_nav, idx, cfg.aug_ml_weight, env_mask=mask)
        parts["loss_ml"].backward()
        idx, mask = self.augmented_batch()  # after the IL rollout: it may rewrite the same paths' instructions
        parts.update(t.rl_step(self.aug_nav, idx, env_mask=mask))
        parts["loss_rl"].backward()
        return parts

    def train_iteration(self) -> dict:
        t = self.trainer
        t.optimizer.zero_grad(set_to_none=True)
        real = t.backward_real_batch()
        aug = self.backward_augmented()
        t.optimizer_step()
        out = {k: float(v.detach()) for k, v in real.items()}
        out.update({f"aug_{k}": float(v.detach()) for k, v in aug.items()})
        return out

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> tuple[dict, dict]:
        tensors, meta = self.speaker_task.state()
        meta["aug_sampler"] = self.aug_sampler.state_dict()
        return tensors, meta

    def load(self, tensors: dict, meta: dict, path) -> None:
        self.speaker_task.load(tensors, meta, path)
        self.aug_sampler.load_state_dict(meta["aug_sampler"])
        self.speaker_ready = True
