"""Load trained agents from checkpoints: decode a split greedily with the follower (evaluation,
export), write instructions for paths with the speaker (offline augmentation data)."""
from __future__ import annotations

import logging

import numpy as np
import torch

from features.provenance import check_checkpoint_store

from . import data as D
from .bank import FeatureBank
from .checkpoint import load_checkpoint, require_trained_follower
from .follower import Follower, FollowerConfig
from .rollout import greedy_trajectories

logger = logging.getLogger(__name__)


def load_follower(path, device="cpu", stanza_dir=None):
    """(Follower in eval mode, tokenizer, checkpoint meta) from a training checkpoint
    (``stanza_dir``: see :func:`checkpoint_tokenizer`)."""
    tensors, meta = load_checkpoint(path, map_location=device)
    require_trained_follower(path, tensors, meta)
    fcfg = FollowerConfig(**meta["follower_config"])
    model = Follower(fcfg).to(device)
    model.load_state_dict(tensors["follower"])
    model.eval()
    return model, checkpoint_tokenizer(meta, str(path), stanza_dir), meta


def checkpoint_tokenizer(meta: dict, source: str = "the checkpoint", stanza_dir=None):
    """The tokenizer a run trained with (its vocabulary and instruction length), from checkpoint meta.

    ``stanza_dir`` defaults to the run's ``--stanza-dir`` (then ``$STANZA_RESOURCES_DIR``).

    Raises:
        vln.tokenizers.TokenizerMismatch: this machine would split a language of the vocabulary
            with another backend than the one that built it (see :func:`vln.tokenizers.check_tokenizer`).
    """
    from vln.tokenizers import check_tokenizer

    cfg = meta["config"]
    tok = D.make_tokenizer(cfg["dataset"], meta["vocab"], cfg["max_instruction_length"],
                           stanza_dir if stanza_dir is not None else cfg.get("stanza_dir"))
    check_tokenizer(meta.get("tokenizer"), tok, source)
    return tok


def open_matching_store(checkpoint, meta: dict, dataset: str, data_dir, features: str | None, dim: int,
                        allow_random_features: bool = False):
    """(data_dir, feature store or None) for decoding with a model trained on ``dim``-d features.

    ``features`` defaults to the encoder of the run (``meta["config"]["features"]``).

    Raises:
        ValueError: the store's feature dimension differs from ``dim``.
        FeatureProvenanceError: the store was made by another encoder than the one the checkpoint
            was trained on, or with random weights and ``allow_random_features`` is False.
    """
    cfg = meta["config"]
    features = cfg["features"] if features is None else features
    data_dir = D.checked_data_dir(dataset, data_dir)
    store = D.open_store(data_dir, features)
    got = 0 if store is None else int(store.dim)
    if got != dim:
        raise ValueError(f"checkpoint {checkpoint} was trained on {dim}-d features ({cfg['features']!r}) "
                         f"but {features!r} has {got}")
    check_checkpoint_store(store, meta, checkpoint, allow_random_features)
    return data_dir, store


def decode_split(checkpoint, dataset: str, data_dir, split: str, features: str | None = None, device="cpu",
                 batch_size: int = 64, language: str | None = None, stanza_dir=None,
                 allow_random_features: bool = False):
    """Greedy trajectories ``{instr_id: [[viewpoint, heading, elevation], ...]}`` of a split.

    ``features`` defaults to the encoder the checkpoint was trained with; its dimension and encoder
    must match (:func:`open_matching_store`). Returns (trajectories, world).
    """
    model, tokenizer, meta = load_follower(checkpoint, device, stanza_dir)
    cfg = meta["config"]
    data_dir, store = open_matching_store(checkpoint, meta, dataset, data_dir, features, model.cfg.feature_dim,
                                          allow_random_features)
    world = D.build_world(dataset, data_dir, split, store, tokenizer, language or cfg.get("language"),
                          cfg["max_instruction_length"], cfg["max_actions"])
    bank = FeatureBank(world.features, device)
    with torch.no_grad():
        trajs = greedy_trajectories(model, bank, world, batch_size)
    return trajs, world


def speak_paths(checkpoint, records, data_dir=None, dataset: str = "synthetic", features: str | None = None,
                device="cpu", batch_size: int = 64, max_length: int | None = None, allow_random_features: bool = False):
    """Greedy speaker instructions for R2R path records (augmentation data written offline).

    Args:
        checkpoint: a ``--mode speaker`` or ``--mode bt`` checkpoint.
        records: :class:`vln.datasets.PathRecord` objects (their instructions are ignored).
        features: feature store (default: the encoder the speaker was trained with).
        allow_random_features: accept a store of random-weight features (tests).

    Returns:
        the records with ``instructions = (generated text,)``, in the same order.
    """
    import dataclasses

    from envs.world import NavWorld

    from .speaker import Speaker
    from .speaker_task import generate_instructions, read_speaker

    if D.DATASET_DEFAULTS[dataset]["format"] != "r2r":
        raise ValueError("speak_paths writes R2R-format paths; use --dataset r2r or synthetic")
    speaker_cfg, state, meta = read_speaker(checkpoint, device)
    speaker = Speaker(speaker_cfg).to(device)
    speaker.load_state_dict(state)
    speaker.eval()
    cfg = meta["config"]
    tokenizer = checkpoint_tokenizer(meta, str(checkpoint))
    data_dir, store = open_matching_store(checkpoint, meta, dataset, data_dir, features, speaker_cfg.feature_dim,
                                          allow_random_features)
    records = list(records)
    episodes = [dataclasses.replace(r, instructions=()).episodes(uninstructed="empty")[0] for r in records]
    world_cfg = D.build_world_config(dataset, data_dir, "speak", store, tokenizer, None,
                                     cfg["max_instruction_length"], cfg["max_actions"])
    world = NavWorld(world_cfg, episodes=episodes)
    bank = FeatureBank(world.features, device)
    texts = generate_instructions(speaker, bank, world, np.arange(len(episodes)), batch_size,
                                  max_length or cfg["max_decode_length"])
    return [dataclasses.replace(r, instructions=(t,)) for r, t in zip(records, texts)]
