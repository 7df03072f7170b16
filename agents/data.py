"""Where a training run's data comes from: data root, feature store, worlds of each split.

``dataset="synthetic"`` is R2R-format data in the synthetic world (generated on first use at the
default location, and its ``synthetic_semantic`` features extracted, when missing: see
:mod:`vln.data_root` and :mod:`features.ensure`). A missing feature store of any other encoder is
an error that lists what it needs and the command that builds it.
"""
from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from envs.world import EnvConfig, NavWorld
from features.ensure import ensure_feature_store
from features.store import open_feature_store
from vln import data_root
from vln.data_root import SOURCES, DataNotFoundError
from vln.datasets import DATASETS

logger = logging.getLogger(__name__)

#: ``--features`` values meaning "no visual features" (language and angle features only).
NO_FEATURES = ("none", "zero")
#: Per-dataset defaults: format, instruction length (tokens), IL weight (CLIP-ViL).
DATASET_DEFAULTS = {
    "r2r": dict(format="r2r", max_instruction_length=80, ml_weight=0.2),
    "rxr": dict(format="rxr", max_instruction_length=160, ml_weight=0.4),
    "synthetic": dict(format="r2r", max_instruction_length=80, ml_weight=0.2),
}


def resolve_data_dir(dataset: str, data_dir) -> Path:
    """The data root: given, else the default location (``vln.synthetic.default_data_dir()``).

    Raises:
        DataNotFoundError: ``--dataset r2r`` / ``rxr`` without a data directory (and without
            ``$CLIPVIL_DATA_DIR``): the real dataset is not at the synthetic world's default location.
    """
    from vln.synthetic import DATA_DIR_ENV

    if data_dir is None and dataset != "synthetic" and not os.environ.get(DATA_DIR_ENV):
        fmt = DATASET_DEFAULTS[dataset]["format"]
        raise DataNotFoundError(
            f"--dataset {dataset} reads the real {DATASETS.get(fmt).folder} data: pass --data-dir DIR (or set "
            f"${DATA_DIR_ENV}) holding connectivity/ and {DATASETS.get(fmt).folder}/ ({SOURCES[fmt]}); "
            f"--dataset synthetic trains on the synthetic world")
    return data_root.resolve_data_dir(data_dir)


def prepare_root(dataset: str, root: Path, given: bool, splits=("train",), auto: bool = True) -> Path:
    """Check ``root`` for ``splits`` (:func:`vln.data_root.prepare_data_dir`); only the synthetic
    dataset at the default location (``given`` False) gets the world generated on first use: a real
    dataset is never replaced by a generated world."""
    default = dataset == "synthetic" and not given
    return data_root.prepare_data_dir(DATASET_DEFAULTS[dataset]["format"], None if default else root, splits,
                                      build_default=auto, suggest_world=dataset == "synthetic")


def checked_data_dir(dataset: str, data_dir, splits=()) -> Path:
    """The data root of a command that reads ``splits`` of it (decoding, speaking), see :func:`prepare_root`."""
    return prepare_root(dataset, resolve_data_dir(dataset, data_dir), data_dir is not None, splits)


def ensure_data(dataset: str, data_dir: Path, features: str | None, auto: bool = True, splits=("train",)) -> None:
    """Check the data root, then the feature store; build the default world / cheap features if allowed.

    Only the default location (:func:`vln.synthetic.default_data_dir`) gets the synthetic world
    generated on first use; any other directory must hold the data already. Missing pieces are
    reported in order: connectivity folder and split files first, then the feature store.

    Raises:
        FileNotFoundError: missing data that is not built here; the message lists what is needed
            and the command or flag that provides each piece.
    """
    given = data_dir.absolute() != data_root.resolve_data_dir(None).absolute()
    prepare_root(dataset, data_dir, given, splits, auto)
    if features is None or features in NO_FEATURES or Path(features).suffix:
        return
    ensure_feature_store(data_dir, features, auto=auto)


def open_store(data_dir: Path, features: str | None):
    """A FeatureStore for an encoder name or path, or None for zero visual features."""
    if features is None or features in NO_FEATURES:
        return None
    path = Path(features) if Path(features).suffix else ensure_feature_store(data_dir, features)
    return open_feature_store(path)


def make_tokenizer(dataset: str, vocab=None, max_instruction_length: int | None = None, stanza_dir=None):
    """The tokenizer of a dataset's format (R2R: EnvDrop's; RxR: multilingual, stanza models from
    ``stanza_dir`` where present); without ``vocab`` it only splits (the world builds the vocabulary)."""
    from vln.tokenizers import MultilingualTokenizer, R2RTokenizer

    d = DATASET_DEFAULTS[dataset]
    length = max_instruction_length or d["max_instruction_length"]
    if d["format"] == "rxr":
        return MultilingualTokenizer(vocab, encoding_length=length, stanza_dir=stanza_dir)
    return R2RTokenizer(vocab, encoding_length=length)


def build_world(dataset: str, data_dir: Path, split: str, store, tokenizer=None, language=None,
                max_instruction_length: int | None = None, max_episode_steps: int = 35) -> NavWorld:
    """A :class:`NavWorld` in index mode for one split (the train vocabulary when ``tokenizer``)."""
    return NavWorld(build_world_config(dataset, data_dir, split, store, tokenizer, language, max_instruction_length,
                                       max_episode_steps))


def episodes_world(train_world: NavWorld, episodes, split: str) -> NavWorld:
    """A :class:`NavWorld` of ``episodes`` (augmented paths) named ``split``, with the training
    world's settings, tokenizer (its vocabulary) and feature store."""
    cfg = dataclasses.replace(train_world.cfg, split=split, tokenizer=train_world.tokenizer, features=train_world.store)
    return NavWorld(cfg, episodes=episodes)


def build_world_config(dataset: str, data_dir: Path, split: str, store, tokenizer=None, language=None,
                       max_instruction_length: int | None = None, max_episode_steps: int = 35) -> EnvConfig:
    """The index-mode :class:`EnvConfig` of a split (see :func:`build_world`)."""
    d = DATASET_DEFAULTS[dataset]
    return EnvConfig(dataset=d["format"], split=split, data_dir=data_dir, features=store, tokenizer=tokenizer,
                     max_instruction_length=max_instruction_length or d["max_instruction_length"],
                     max_episode_steps=max_episode_steps, language=language, feature_mode="index")


def available_splits(dataset: str, data_dir: Path) -> list[str]:
    """Splits present on disk for the dataset's format."""
    return DATASETS.get(DATASET_DEFAULTS[dataset]["format"]).splits(data_dir)
