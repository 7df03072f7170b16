"""Training and validating the speaker (``train_agent.py --mode speaker``).

Each iteration takes a batch of training episodes, follows their shortest paths to record the
panoramic trajectory (under an environmental-dropout mask if ``speaker_env_dropout`` > 0, one
mask per environment; the speaker's own feature dropout is ``speaker_feature_dropout``), and
minimises the teacher-forced cross-entropy of the episode's instruction with Adam (the encoder's
and the decoder's gradient norms clipped separately, as EnvDrop's). Validation decodes one
instruction per path greedily and scores it with corpus BLEU against all of that path's
reference instructions.
"""
from __future__ import annotations

import logging
from collections import Counter

import numpy as np
import torch

from envs.batch import NavBatch

from .bleu import corpus_bleu
from .checkpoint import load_checkpoint
from .envdrop import EnvDropout
from .grad_clip import clip_each
from .speaker import Speaker, SpeakerConfig
from .trajectory import teacher_trajectories

logger = logging.getLogger(__name__)


def build_speaker(cfg, tokenizer, feature_dim: int, device) -> Speaker:
    """A speaker sized by a :class:`agents.config.TrainConfig` for ``tokenizer``'s vocabulary."""
    scfg = SpeakerConfig(vocab_size=int(tokenizer.vocab_size), feature_dim=feature_dim,
                         padding_idx=int(tokenizer.pad_id), bos_idx=int(tokenizer.bos_id), eos_idx=int(tokenizer.eos_id),
                         unk_idx=int(tokenizer.unk_id), word_embedding=cfg.word_embedding, hidden=cfg.hidden,
                         dropout=cfg.speaker_dropout, feature_dropout=cfg.speaker_feature_dropout,
                         angle_harmonics=cfg.angle_harmonics)
    return Speaker(scfg).to(device)


def read_speaker(path, device, tokenizer=None) -> tuple[SpeakerConfig, dict, dict]:
    """(speaker config, speaker weights, checkpoint meta) of a ``--mode speaker`` or ``--mode bt``
    checkpoint (or a bt run's ``speaker.pt``), read once.

    Raises:
        ValueError: the checkpoint holds no speaker, or (``tokenizer`` given) its vocabulary
            differs from ``tokenizer``'s.
    """
    tensors, meta = load_checkpoint(path, map_location=device)
    task = meta.get("task", {})
    if "speaker" not in tensors or "speaker_config" not in task:
        raise ValueError(f"checkpoint {path} holds no speaker (train one with --mode speaker)")
    if tokenizer is not None and list(meta["vocab"]) != list(tokenizer.vocab):
        raise ValueError(f"checkpoint {path} was trained with another vocabulary ({len(meta['vocab'])} words, "
                         f"this run has {tokenizer.vocab_size}); use a speaker trained on the same training split")
    return saved_speaker_config(task), tensors["speaker"], meta


def saved_speaker_config(task_meta: dict) -> SpeakerConfig:
    """The :class:`SpeakerConfig` a checkpoint's task metadata records."""
    # Speakers written before the encoder became bidirectional (2026-12-03) have no such field.
    return SpeakerConfig(**{"bidirectional": False, **task_meta["speaker_config"]})


def require_same_encoder(saved: SpeakerConfig, wanted: SpeakerConfig, path) -> None:
    """Raise ValueError naming checkpoint ``path`` and the field when its speaker's encoder is not
    ``wanted``'s (a one-directional speaker, written before the encoder became bidirectional)."""
    if saved.bidirectional != wanted.bidirectional:
        raise ValueError(f"checkpoint {path}: field 'speaker_config.bidirectional' is {saved.bidirectional}, expected "
                         f"{wanted.bidirectional}: its speaker was trained before the speaker's encoder became "
                         "bidirectional as EnvDrop's (2026-12-03); train it again")


def path_representatives(world) -> tuple[np.ndarray, dict]:
    """One episode index per path (its first instruction) and ``{path_id: [instructions]}``."""
    first, refs = {}, {}
    for i, ep in enumerate(world.episodes):
        key = str(ep.path_id)
        first.setdefault(key, i)
        refs.setdefault(key, []).append(ep.instruction)
    keys = list(first)
    return np.array([first[k] for k in keys], dtype=np.int64), {k: refs[k] for k in keys}


@torch.no_grad()
def generate_instructions(speaker: Speaker, bank, world, episodes: np.ndarray, batch_size: int = 64,
                          max_length: int = 120) -> list[str]:
    """Greedy instructions for ``episodes`` (indices into ``world.episodes``), in order."""
    was_training = speaker.training
    speaker.eval()
    out = []
    try:
        for start in range(0, len(episodes), batch_size):
            idx = episodes[start: start + batch_size]
            nav = NavBatch(world, len(idx))
            nav.reset_envs(np.arange(len(idx)), idx)
            traj = teacher_trajectories(bank, nav)
            ids, lengths = speaker.generate(traj.views, traj.actions, traj.lengths, max_length=max_length)
            out += [world.tokenizer.decode(row.tolist()) for row in ids.cpu()]
    finally:
        speaker.train(was_training)
    return out


class SpeakerTask:
    """The speaker's part of a :class:`agents.trainer.Trainer` run (optimiser, step, validation)."""

    def __init__(self, trainer):
        cfg = trainer.cfg
        self.trainer = trainer
        self.speaker = build_speaker(cfg, trainer.tokenizer, trainer.bank.dim, trainer.device)
        self.optimizer = torch.optim.Adam(self.speaker.parameters(), lr=cfg.speaker_lr)
        rate = cfg.speaker_env_dropout if trainer.bank.dim else 0.0
        self.env_dropout = EnvDropout(rate, cfg.env_dropout_per) if rate > 0 else None

    def loss(self, nav: NavBatch, episodes: np.ndarray, env_dropout: bool = True) -> torch.Tensor:
        """Teacher-forcing loss of the speaker on ``episodes`` (``nav`` is reset to them)."""
        t = self.trainer
        nav.reset_envs(np.arange(len(episodes)), episodes)
        mask = None
        if env_dropout and self.env_dropout is not None:
            mask = self.env_dropout.sample(len(episodes), t.bank.dim, t.device)
        traj = teacher_trajectories(t.bank, nav, mask)
        w = nav.world
        tokens = torch.as_tensor(w.instruction_ids[episodes], device=t.device)
        lengths = torch.as_tensor(w.instruction_lengths[episodes], device=t.device)
        return self.speaker.loss(traj.views, traj.actions, traj.lengths, tokens, lengths)

    def train_iteration(self) -> dict:
        t = self.trainer
        return {"loss_speaker": self.step(t.nav, t.sampler.next())}

    def step(self, nav: NavBatch, episodes: np.ndarray) -> float:
        """One optimiser step on ``episodes``' teacher-forcing loss; returns the loss.

        The encoder's and the decoder's gradient norms are clipped to ``grad_clip`` separately,
        as EnvDrop's speaker (:func:`agents.grad_clip.clip_each`).
        """
        self.speaker.train()
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss(nav, episodes)
        loss.backward()
        clip_each((self.speaker.encoder, self.speaker.decoder), self.trainer.cfg.grad_clip)
        self.optimizer.step()
        return float(loss.detach())

    def evaluate(self) -> dict:
        """``{"<split>/bleu": BLEU-4, "<split>/bleu1": ..., "<split>/loss": teacher-forcing loss,
        "<split>/distinct": fraction of paths whose generated instruction no other path got}``.

        ``distinct`` exposes a speaker that has not yet grounded its words: such a speaker writes
        the same instruction (the same rooms and objects) for most paths, and back-translation on
        its instructions does not help, while its BLEU can still look reasonable.
        """
        t = self.trainer
        out = {}
        for split, world in t.val_worlds.items():
            reps, refs = path_representatives(world)
            hyps = generate_instructions(self.speaker, t.bank, world, reps, t.cfg.batch_size, t.cfg.max_decode_length)
            for k, v in corpus_bleu(dict(zip(refs, hyps)), refs, world.tokenizer.split).items():
                out[f"{split}/{k}"] = v
            self.speaker.eval()
            with torch.no_grad():
                n = min(len(world.episodes), 4 * t.cfg.batch_size)
                idx = np.arange(n)
                losses = [float(self.loss(NavBatch(world, len(c)), c, env_dropout=False)) * len(c)
                          for c in np.array_split(idx, max(1, -(-n // t.cfg.batch_size)))]
            self.speaker.train()
            out[f"{split}/loss"] = sum(losses) / n
            counts = Counter(hyps)
            out[f"{split}/distinct"] = sum(counts[h] == 1 for h in hyps) / len(hyps)
            out[f"{split}/example"] = hyps[0]
        return out

    def state(self) -> tuple[dict, dict]:
        return ({"speaker": self.speaker.state_dict(), "speaker_optimizer": self.optimizer.state_dict()},
                {"speaker_config": self.speaker.cfg.to_dict()})

    def load(self, tensors: dict, meta: dict, path) -> None:
        """Restore the speaker and its optimiser from checkpoint ``path``'s ``tensors`` and task ``meta``."""
        require_same_encoder(saved_speaker_config(meta), self.speaker.cfg, path)
        self.speaker.load_state_dict(tensors["speaker"])
        self.optimizer.load_state_dict(tensors["speaker_optimizer"])
