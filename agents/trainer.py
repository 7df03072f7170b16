"""The training loop: arguments, data, model, loop, validation, logging, checkpoints, resume.

The run folder is the run layer's (:class:`training.run.RunDir`): ``params.json``, ``latest.pt``
(written atomically at every validation and every ``--latest-every`` iterations or
``--latest-minutes`` minutes, whichever comes first), ``best_<split>.pt`` (best SR on each
validation split; BLEU for the speaker), ``vocab.txt`` and TensorBoard event files under ``tb/``.
Pointing a new run at an existing folder resumes from ``latest.pt`` exactly (same weights,
optimiser state, random states and next batch) with the settings saved in ``params.json``; a
setting that differs from them is refused (:class:`training.config.ConfigMismatchError`) unless it
may change on resume (``--iters``, the device, logging).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from envs.batch import NavBatch
from features.provenance import CHECKPOINT_KEY, check_checkpoint_store, check_store
from vln.evaluate import Evaluator
from training.checkpoint import restore_rng_state, rng_state
from training.logging import TrainLog
from training.run import LatestPolicy, RunDir, run_name
from vln.io_utils import atomic_write_json
from vln.tokenizers import check_tokenizer, read_vocab, write_vocab

from . import data as D
from .bank import FeatureBank
from .envdrop import EnvDropout
from .checkpoint import (DECODER_STATE, DECODER_STATE_KEY, FORMAT, load_checkpoint, require_current_decoder,
                         require_trained_follower, save_checkpoint)
from .config import TrainConfig
from .follower import Follower, FollowerConfig
from .grad_clip import clip_each
from .rollout import Speedups, greedy_trajectories, rollout
from .rows import draws_from
from .sampler import EpisodeSampler

logger = logging.getLogger(__name__)
#: Reference policies scored before training (names of envs.baselines.BASELINES).
TRAINER_BASELINES = ("stop", "random_uniform", "random_walk")


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"--device {name} asked for, but torch sees no CUDA device")
    return torch.device(name)


def default_run_dir(cfg: TrainConfig) -> Path:
    feats = Path(cfg.features).stem if cfg.features else "none"
    return Path("runs") / run_name(cfg.mode, feats, cfg.seed)


def run_side_by_side(first, second, threads: int):
    """``(first(), second())``, run at the same time: ``second`` on a new thread, ``first`` on this
    one, torch's intra-op threads set to ``threads`` while both run (each thread then uses that
    many; a thread's count is fixed when it first computes, so the new thread gets it) and restored
    after. An exception in either is raised after both have finished."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    box: dict = {}

    def target():
        try:
            box["value"] = second()
        except BaseException as e:  # noqa: BLE001 - handed to the caller below
            box["error"] = e

    worker = threading.Thread(target=target, name="rollout", daemon=True)
    try:
        worker.start()
        try:
            out = first()
        finally:
            worker.join()
    finally:
        torch.set_num_threads(before)
    if "error" in box:
        raise box["error"]
    return out, box["value"]


def rl_parts(result) -> dict:
    """``{"loss_rl": ..., <RL statistic>: tensor}`` of an A2C :class:`agents.rollout.RolloutResult`."""
    return {"loss_rl": result.loss_rl, **{k: torch.tensor(v) for k, v in result.stats.items()}}


class Trainer:
    """Builds everything a run needs from a :class:`TrainConfig` and trains it.

    Attributes:
        cfg: the configuration (``ml_weight`` / ``max_instruction_length`` filled in).
        train_world, val_worlds: :class:`envs.world.NavWorld` of the splits (index mode).
        bank: the features on the device (one tensor).
        follower: :class:`Follower`; speaker (``mode`` speaker/bt): :class:`agents.speaker.Speaker`.
        iteration: iterations done so far.
        history: validation results, a list of ``{"iter", "<split>/<metric>": value}``.
    """

    def __init__(self, cfg: TrainConfig):
        cfg.check()
        defaults = D.DATASET_DEFAULTS[cfg.dataset]
        cfg.ml_weight = defaults["ml_weight"] if cfg.ml_weight is None else cfg.ml_weight
        cfg.max_instruction_length = cfg.max_instruction_length or defaults["max_instruction_length"]
        self.run = RunDir(cfg.out or default_run_dir(cfg), fmt=FORMAT)
        self.out = self.run.path
        cfg = self.run.resolve_config(cfg)  # a resumed run: refuse settings that differ from params.json
        self.cfg = cfg
        self.device = pick_device(cfg.device)
        if cfg.threads or self.device.type == "cpu":
            # One thread by default on the CPU: the decoder runs many small ops per step, and
            # OpenMP workers spinning on a shared or busy machine made each op 10-50x slower.
            torch.set_num_threads(cfg.threads or 1)
        torch.manual_seed(cfg.seed)
        self.data_dir = D.resolve_data_dir(cfg.dataset, cfg.data_dir)
        D.ensure_data(cfg.dataset, self.data_dir, cfg.features, auto=not cfg.no_auto_data)
        self.store = D.open_store(self.data_dir, cfg.features)
        self.feature_record = check_store(self.store, allow_random=cfg.allow_random_features)
        resume = self.run.resuming
        saved = load_checkpoint(self.run.latest_path)[1] if resume else None
        vocab = saved["vocab"] if resume else (read_vocab(cfg.vocab) if cfg.vocab else None)
        self.train_world = self._world("train", self._tokenizer(vocab))  # vocab None: built from train
        self.tokenizer = self.train_world.tokenizer
        if resume:  # the vocabulary is only valid with the splitter that built it
            check_tokenizer(saved.get("tokenizer"), self.tokenizer, str(self.run.latest_path))
        splits = D.available_splits(cfg.dataset, self.data_dir)
        self.val_worlds = {s: self._world(s, self.tokenizer) for s in cfg.eval_splits.split(",") if s and s in splits}
        self.bank = FeatureBank(self.train_world.features, self.device)
        self.follower = Follower(FollowerConfig(
            vocab_size=self.train_world.vocab_size, feature_dim=self.bank.dim, padding_idx=int(self.tokenizer.pad_id),
            word_embedding=cfg.word_embedding, hidden=cfg.hidden, action_embedding=cfg.action_embedding,
            dropout=cfg.dropout, feature_dropout=cfg.feature_dropout, sub_out=cfg.sub_out,
            angle_harmonics=cfg.angle_harmonics, candidate_distance=cfg.candidate_distance,
            candidate_lookahead=cfg.candidate_lookahead)).to(self.device)
        self.optimizer = torch.optim.RMSprop(self.follower.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        # Polyak averaging: the average is what is validated, saved as "follower" and exported.
        self.ema = (AveragedModel(self.follower, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema_decay), use_buffers=True)
                    if cfg.ema_decay > 0 and cfg.mode != "speaker" else None)
        rate = cfg.follower_env_dropout if self.bank.dim else 0.0
        self.real_env_dropout = EnvDropout(rate, cfg.env_dropout_per) if rate > 0 else None
        self.sampler = EpisodeSampler(len(self.train_world.episodes), cfg.batch_size, cfg.seed)
        self.nav = NavBatch(self.train_world, cfg.batch_size)
        self.evaluators = {s: Evaluator(w.navgraph, w.episodes) for s, w in self.val_worlds.items()
                           if all(len(e.path) > 1 for e in w.episodes)}
        # how rollouts are computed: the switches that pay on this device (benches switch them off for their baseline)
        self.speedups = Speedups.for_device(self.device)
        self.last_rollouts: dict = {"il": None, "rl": None}  # RolloutResults of the last follower step
        self._second_navs: dict = {}  # id(nav) -> (nav, the NavBatch its A2C batches run on)
        self.side_by_side = False  # whether the last IL + A2C step ran its two rollouts on two threads
        self.iteration = 0
        self.history: list[dict] = []
        self.best: dict[str, dict] = {}
        self.baseline: dict[str, float] = {}
        self.task = None
        if cfg.mode == "speaker":
            from .speaker_task import SpeakerTask

            self.task = SpeakerTask(self)
        elif cfg.mode == "bt":
            from .backtranslation import BackTranslationTask

            self.task = BackTranslationTask(self)
        elif cfg.aug_data:
            from .augmented_data import AugmentedDataTask

            self.task = AugmentedDataTask(self)
        self.log: TrainLog | None = None
        if resume:
            self.load(self.run.latest_path)

    # ------------------------------------------------------------------ data
    def _world(self, split, tokenizer):
        c = self.cfg
        return D.build_world(c.dataset, self.data_dir, split, self.store, tokenizer, c.language,
                             c.max_instruction_length, c.max_actions)

    def _tokenizer(self, vocab):
        """The run's tokenizer with ``vocab`` (``None``: a splitter the train world builds it with)."""
        return D.make_tokenizer(self.cfg.dataset, vocab, self.cfg.max_instruction_length, self.cfg.stanza_dir)

    # ------------------------------------------------------------------ training
    def follower_step(self, nav: NavBatch, il_episodes: np.ndarray, rl_episodes, ml_weight: float,
                      env_mask=None, bank: FeatureBank | None = None) -> dict:
        """IL on one batch, then A2C on another (``feedback="sample"``).

        The IL batch is teacher-forced (``il_feedback="teacher"``, EnvDrop: :meth:`il_step`, then
        :meth:`rl_step` on ``rl_episodes``), or sampled from the policy with the teacher's action at
        each visited viewpoint as the label (``il_feedback="sample"``); then the A2C loss comes from
        that same rollout and ``rl_episodes`` is not used. Returns the weighted loss tensors
        (``loss_ml``, ``loss_rl``) and RL statistics; the :class:`agents.rollout.RolloutResult` of
        each rollout stays in ``self.last_rollouts`` (``"il"``, ``"rl"``; the same result twice for
        sampled IL + A2C).

        With teacher-forced IL and an A2C batch (``rl_episodes``), each rollout draws from a
        generator of its own and the A2C batch runs on :meth:`second_nav` of ``nav``
        (:meth:`_il_and_rl`, which :meth:`backward_step` shares), one after the other.
        """
        cfg = self.cfg
        bank = self.bank if bank is None else bank
        rl_on = cfg.feedback == "sample"
        if self.separate_rl_batch:
            return self._il_and_rl(nav, il_episodes, rl_episodes, ml_weight, env_mask, bank, backward=False)
        if cfg.il_feedback == "sample":
            nav.reset_envs(np.arange(len(il_episodes)), il_episodes)
            r = rollout(self.follower, bank, nav, "sample", il=True, rl=rl_on, env_mask=env_mask,
                        gamma=cfg.gamma, entropy_coef=cfg.entropy_coef, label_smoothing=cfg.label_smoothing,
                        **self.speedups.rollout_switches())
            out = {"loss_ml": r.loss_il * ml_weight, "loss_rl": torch.zeros((), device=self.device)}
            if rl_on:
                out.update(rl_parts(r))
            self.last_rollouts = {"il": r, "rl": r if rl_on else None}
            return out
        return self.il_step(nav, il_episodes, ml_weight, env_mask, bank)

    @property
    def separate_rl_batch(self) -> bool:
        """True when an iteration's A2C rollout takes a batch of its own (teacher-forced IL + A2C, EnvDrop)."""
        return self.cfg.feedback == "sample" and self.cfg.il_feedback == "teacher"

    def il_step(self, nav: NavBatch, episodes: np.ndarray, ml_weight: float, env_mask=None,
                bank: FeatureBank | None = None) -> dict:
        """The teacher-forced IL rollout of ``episodes`` (``nav`` is reset to them): ``{"loss_ml":
        IL loss * ml_weight, "loss_rl": 0}``; the result is ``self.last_rollouts["il"]`` (``"rl"`` None)."""
        bank = self.bank if bank is None else bank
        il = self._il_rollout(nav, episodes, env_mask, bank)
        self.last_rollouts = {"il": il, "rl": None}
        return {"loss_ml": il.loss_il * ml_weight, "loss_rl": torch.zeros((), device=self.device)}

    def _il_rollout(self, nav: NavBatch, episodes: np.ndarray, env_mask, bank: FeatureBank):
        nav.reset_envs(np.arange(len(episodes)), episodes)
        return rollout(self.follower, bank, nav, "teacher", il=True, env_mask=env_mask,
                       label_smoothing=self.cfg.label_smoothing, **self.speedups.rollout_switches())

    def rl_step(self, nav: NavBatch, episodes: np.ndarray, env_mask=None, bank: FeatureBank | None = None) -> dict:
        """The sampled A2C rollout of ``episodes`` (``nav`` is reset to them): ``{"loss_rl": ...}`` and
        its statistics; the result is ``self.last_rollouts["rl"]``."""
        rl = self._rl_rollout(nav, episodes, env_mask, self.bank if bank is None else bank)
        self.last_rollouts["rl"] = rl
        return rl_parts(rl)

    def _rl_rollout(self, nav: NavBatch, episodes: np.ndarray, env_mask, bank: FeatureBank):
        nav.reset_envs(np.arange(len(episodes)), episodes)
        return rollout(self.follower, bank, nav, "sample", rl=True, env_mask=env_mask,
                       gamma=self.cfg.gamma, entropy_coef=self.cfg.entropy_coef, **self.speedups.rollout_switches())

    def rollout_generators(self) -> tuple[torch.Generator, torch.Generator]:
        """Two generators on the device for an iteration's IL and A2C rollouts, seeded with two
        numbers drawn from torch's global generator (so a run, and its resume, stays reproducible
        from the global random state)."""
        seeds = torch.randint(0, 2 ** 62, (2,)).tolist()
        return tuple(torch.Generator(device=self.device).manual_seed(s) for s in seeds)

    def second_nav(self, nav: NavBatch) -> NavBatch:
        """A second :class:`NavBatch` over ``nav``'s world and batch size (made once), for the A2C
        batch that runs beside ``nav``'s IL batch."""
        key = id(nav)
        if key not in self._second_navs:
            self._second_navs[key] = (nav, NavBatch(nav.world, nav.B))  # holding nav keeps its id unique
        return self._second_navs[key][1]

    def real_env_mask(self, batch_size: int):
        """(B, D) environmental-dropout mask for a batch of real episodes (``follower_env_dropout``), or None."""
        if self.real_env_dropout is None:
            return None
        return self.real_env_dropout.sample(batch_size, self.bank.dim, self.device)

    def lr_at(self, iteration: int) -> float:
        """The follower's learning rate for the step after ``iteration`` steps (``cfg.lr_schedule``)."""
        if self.cfg.lr_schedule == "constant":
            return self.cfg.lr
        return 0.5 * self.cfg.lr * (1.0 + math.cos(math.pi * min(iteration / max(self.cfg.iters, 1), 1.0)))

    def backward_batch(self, nav: NavBatch, sampler: EpisodeSampler, ml_weight: float, env_mask_of=None) -> dict:
        """Draw the next batch of ``sampler`` (and a second one for A2C after teacher-forced IL),
        roll the follower out on ``nav``'s world and accumulate the gradients of its losses.

        ``env_mask_of(batch_size)`` gives the batch's environmental-dropout mask (or None).
        Returns the loss tensors of :meth:`follower_step`.
        """
        cfg = self.cfg
        il_batch = sampler.next()
        rl_batch = sampler.next() if self.separate_rl_batch else None
        mask = env_mask_of(len(il_batch)) if env_mask_of is not None else None
        return self.backward_step(nav, il_batch, rl_batch, ml_weight, mask)

    def backward_step(self, nav: NavBatch, il_episodes: np.ndarray, rl_episodes, ml_weight: float,
                      env_mask=None) -> dict:
        """:meth:`follower_step` on the given episodes, then accumulate its losses' gradients; returns its loss tensors.

        Teacher-forced IL with an A2C batch (EnvDrop's iteration): each rollout and its backward
        run on their own generator (:meth:`rollout_generators`) and :class:`NavBatch`, on two
        threads at once with the ``concurrent_rollouts`` switch and two or more torch threads
        (each gets half of them), else one after the other; the gradients are the sum of the two
        losses' gradients either way (one contribution each per parameter, so the same numbers).
        """
        if self.separate_rl_batch:
            return self._il_and_rl(nav, il_episodes, rl_episodes, ml_weight, env_mask, self.bank, backward=True)
        parts = self.follower_step(nav, il_episodes, rl_episodes, ml_weight, env_mask=env_mask)
        (parts["loss_ml"] + parts["loss_rl"]).backward()
        return parts

    def _il_and_rl(self, nav: NavBatch, il_episodes: np.ndarray, rl_episodes, ml_weight: float, env_mask,
                   bank: FeatureBank, backward: bool) -> dict:
        """EnvDrop's iteration: teacher-forced IL on ``il_episodes`` (on ``nav``) and A2C on
        ``rl_episodes`` (on :meth:`second_nav` of ``nav``), each rollout drawing from a generator of
        its own (:meth:`rollout_generators`). With ``backward`` each rollout's loss is
        back-propagated right after it, and the two run side by side (:func:`run_side_by_side`)
        with the ``concurrent_rollouts`` switch and two or more torch threads; else one after the
        other. Returns the loss tensors and RL statistics (``loss_ml`` detached after its backward)."""
        if rl_episodes is None:
            raise ValueError("teacher-forced IL + A2C rolls A2C out on a batch of its own: pass rl_episodes")
        g_il, g_rl = self.rollout_generators()
        rl_nav = self.second_nav(nav)

        def il_part():
            with draws_from(g_il):
                result = self._il_rollout(nav, il_episodes, env_mask, bank)
            if backward:
                (result.loss_il * ml_weight).backward()
            return result

        def rl_part():
            with draws_from(g_rl):
                result = self._rl_rollout(rl_nav, rl_episodes, env_mask, bank)
            if backward:
                result.loss_rl.backward()
            return result

        threads = torch.get_num_threads()
        self.side_by_side = backward and self.speedups.concurrent_rollouts and threads >= 2
        if self.side_by_side:
            il, rl = run_side_by_side(il_part, rl_part, threads // 2)
        else:
            il, rl = il_part(), rl_part()
        self.last_rollouts = {"il": il, "rl": rl}
        loss_ml = il.loss_il * ml_weight
        return {"loss_ml": loss_ml.detach() if backward else loss_ml, **rl_parts(rl)}

    def backward_real_batch(self) -> dict:
        """:meth:`backward_batch` on the next batch of real training episodes (``ml_weight``,
        ``follower_env_dropout``)."""
        return self.backward_batch(self.nav, self.sampler, self.cfg.ml_weight, self.real_env_mask)

    def optimizer_step(self) -> None:
        """Clip the accumulated gradients' norm to ``grad_clip``, the encoder's and the decoder's
        separately and the critic's not at all (as EnvDrop), and step the optimiser."""
        clip_each((self.follower.encoder, self.follower.decoder), self.cfg.grad_clip)
        self.optimizer.step()

    def train_iteration(self) -> dict:
        """One optimiser step; returns float losses for logging."""
        self.follower.train()
        if self.task is not None:
            return self.task.train_iteration()
        self.optimizer.zero_grad(set_to_none=True)
        parts = self.backward_real_batch()
        self.optimizer_step()
        return {k: float(v.detach()) for k, v in parts.items()}

    def start_from_follower(self) -> None:
        """Load ``--follower``'s weights into the follower (EnvDrop ``--load``) and, with
        ``--load-optim``, its RMSprop statistics (the learning rate stays ``--lr``)."""
        cfg = self.cfg
        tensors, meta = load_checkpoint(cfg.follower, map_location=self.device)
        require_trained_follower(cfg.follower, tensors, meta)
        check_checkpoint_store(self.store, meta, cfg.follower, cfg.allow_random_features)
        defaults = {f.name: f.default for f in dataclasses.fields(FollowerConfig)}
        # followers saved before a field was added: its default
        for name in ("sub_out", "angle_harmonics", "candidate_distance", "candidate_lookahead"):
            saved, wanted = meta["follower_config"].get(name, defaults[name]), getattr(cfg, name)
            if saved != wanted:
                flag = "--" + name.replace("_", "-")
                if isinstance(saved, bool):
                    raise ValueError(f"checkpoint {cfg.follower}: field 'follower_config.{name}' is {saved!r}, this run "
                                     f"has {flag} {'on' if wanted else 'off'}: {'give' if saved else 'drop'} {flag} "
                                     f"to start from it")
                raise ValueError(f"checkpoint {cfg.follower}: field 'follower_config.{name}' is {saved!r}, this run has "
                                 f"{flag} {wanted}: pass {flag} {saved} to start from it")
        self.follower.load_state_dict(tensors["follower"])
        if cfg.load_optim:
            if "optimizer" not in tensors:
                raise ValueError(f"--follower {cfg.follower} holds no optimizer state for --load-optim")
            self.optimizer.load_state_dict(tensors["optimizer"])
            for group in self.optimizer.param_groups:
                group["lr"], group["weight_decay"] = cfg.lr, cfg.weight_decay
        logger.info("follower starts from %s%s", cfg.follower, " with its optimizer state" if cfg.load_optim else "")

    def update_average(self) -> None:
        """Fold the follower's weights after an optimiser step into the moving average (``--ema-decay``)."""
        if self.ema is not None:
            self.ema.update_parameters(self.follower)

    @property
    def policy(self) -> Follower:
        """The follower that is validated and saved as ``follower``: the moving average with ``--ema-decay``."""
        return self.follower if self.ema is None else self.ema.module

    # ------------------------------------------------------------------ validation
    def evaluate(self) -> dict:
        """Greedy decoding on every validation split; ``{"<split>/<metric>": value}``."""
        if self.task is not None and self.cfg.mode == "speaker":
            return self.task.evaluate()
        out = {}
        for split, world in self.val_worlds.items():
            trajs = greedy_trajectories(self.policy, self.bank, world, self.cfg.batch_size, speedups=self.speedups)
            if split in self.evaluators:
                summary = self.evaluators[split].score(trajs).summary
                for k in ("sr", "spl", "ndtw", "sdtw", "cls", "nav_error", "osr", "lengths"):
                    if k in summary:
                        out[f"{split}/{k}"] = float(summary[k])
        return out

    def baselines(self) -> dict:
        """SR/SPL of the :data:`TRAINER_BASELINES` on the validation splits (same evaluator).

        Keys ``<split>/<name>_sr`` and ``_spl`` with the names of :data:`envs.baselines.BASELINES`
        (``random_walk`` moves as many times as a mean reference path has edges, then stops;
        ``random_uniform`` draws uniformly over candidates and STOP each step). Rolled out as
        ``scripts/demo.py`` does (batch 64, the run's seed), so both print the same numbers.
        """
        from envs.baselines import BASELINES, rollout_split

        out = {}
        for split, ev in self.evaluators.items():
            world = self.val_worlds[split]
            policies = {name: BASELINES.get(name).policy(world) for name in TRAINER_BASELINES}
            for name, policy in policies.items():
                s = ev.score(rollout_split(world, policy, seed=self.cfg.seed)).summary
                out[f"{split}/{name}_sr"], out[f"{split}/{name}_spl"] = float(s["sr"]), float(s["spl"])
        return out

    # ------------------------------------------------------------------ checkpoints
    def state(self) -> tuple[dict, dict]:
        tensors = {"follower": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                   "rng": rng_state(self.device)}
        if self.ema is not None:  # "follower" holds the average; resuming needs the trained weights too
            tensors["follower_trained"] = self.follower.state_dict()
            tensors["ema"] = self.ema.state_dict()
        meta = {"iteration": self.iteration, "config": self.cfg.to_dict(), "follower_config": self.follower.cfg.to_dict(),
                "vocab": list(self.tokenizer.vocab), "tokenizer": self.tokenizer.describe(), "sampler": self.sampler.state_dict(), "history": self.history,
                "best": self.best, "baseline": self.baseline, CHECKPOINT_KEY: self.feature_record,
                DECODER_STATE_KEY: DECODER_STATE}
        if self.task is not None:
            t_tensors, t_meta = self.task.state()
            tensors.update(t_tensors)
            meta["task"] = t_meta
        return tensors, meta

    def save(self, path: Path) -> None:
        tensors, meta = self.state()
        save_checkpoint(path, tensors, meta)

    def load(self, path: Path) -> None:
        """Restore everything (weights, optimiser, random states, sampler) from a checkpoint."""
        tensors, meta = load_checkpoint(path, map_location=self.device)
        check_checkpoint_store(self.store, meta, path, self.cfg.allow_random_features)
        if self.cfg.mode != "speaker":  # a speaker run's follower is never trained
            require_current_decoder(path, meta)
        if self.ema is not None:
            self.follower.load_state_dict(tensors["follower_trained"])
            self.ema.load_state_dict(tensors["ema"])
        else:
            self.follower.load_state_dict(tensors["follower"])
        self.optimizer.load_state_dict(tensors["optimizer"])
        self.sampler.load_state_dict(meta["sampler"])
        self.iteration, self.history, self.best = meta["iteration"], meta["history"], meta["best"]
        self.baseline = meta.get("baseline", {})
        if self.task is not None:
            self.task.load(tensors, meta.get("task", {}), path)
        restore_rng_state(tensors["rng"], self.device)
        logger.info("resumed %s at iteration %d", path, self.iteration)

    def _validate_and_save(self) -> dict:
        metrics = self.evaluate()
        record = {"iter": self.iteration, **metrics}
        self.history.append(record)
        self.log.metrics(self.iteration, metrics)
        key_metric = "bleu" if self.cfg.mode == "speaker" else "sr"
        for split in self.val_worlds:
            v = metrics.get(f"{split}/{key_metric}")
            if v is not None and (split not in self.best or v > self.best[split]["value"]):
                self.best[split] = {"value": v, "iter": self.iteration}
                self.save(self.run.best_path(split))
        self.save(self.run.latest_path)
        logger.info("iter %d (process CPU %.0f s): %s", self.iteration, time.process_time(), "  ".join(
            f"{k} {v:.4f}" if not isinstance(v, str) else f"{k} {v!r}" for k, v in metrics.items()))
        return metrics

    # ------------------------------------------------------------------ loop
    def train(self, iters: int | None = None, on_iteration=None) -> list[dict]:
        """Train until ``iters`` total iterations (default ``cfg.iters``); returns the history.

        ``on_iteration(iteration, losses)`` is called after every optimiser step (tests use it).

        Raises:
            ConfigMismatchError: ``cfg.iters`` is below the iterations a resumed run has done.
        """
        cfg = self.cfg
        if iters is None:
            self.run.check_iterations(self.iteration, cfg.iters)
            iters = cfg.iters
        self.run.write_params(cfg)
        write_vocab(self.tokenizer.vocab, self.out / "vocab.txt")
        atomic_write_json(self.out / "tokenizer.json", self.tokenizer.describe(), indent=1)  # what built vocab.txt
        self.log = TrainLog(self.run.tb_dir, iters, self.iteration, cfg.log_every, cfg.progress)
        policy = LatestPolicy(cfg.latest_every, cfg.latest_minutes)
        with self.log:
            if self.iteration == 0 and cfg.follower:
                self.start_from_follower()
            if hasattr(self.task, "prepare"):
                self.task.prepare()
            if self.iteration == 0:
                self.log.hparams(cfg.to_dict())
                if cfg.mode != "speaker":
                    self.baseline = self.baselines()
                    logger.info("baselines: %s", "  ".join(f"{k} {v:.4f}" for k, v in self.baseline.items()))
                    self.log.metrics(0, {f"baseline/{k}": v for k, v in self.baseline.items()})
            while self.iteration < iters:
                for group in self.optimizer.param_groups:
                    group["lr"] = self.lr_at(self.iteration)
                losses = self.train_iteration()
                self.update_average()
                self.iteration += 1
                self.log.step(self.iteration, losses)
                if on_iteration is not None:
                    on_iteration(self.iteration, losses)
                if self.iteration % cfg.eval_every == 0 or self.iteration == iters:
                    self._validate_and_save()
                    policy.saved(self.iteration)
                elif policy.due(self.iteration):
                    self.save(self.run.latest_path)
                    policy.saved(self.iteration)
        return self.history
