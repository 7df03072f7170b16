"""Where a training run's data comes from: data root, feature store, worlds of each split.

``dataset="synthetic"`` is R2R-format data in the synthetic world (generated on first use, and
its ``synthetic_semantic`` features extracted, when missing). A missing feature store of any other
encoder is an error that prints the extraction command that builds it.
"""
from __future__ import annotations

import logging
from pathlib import Path

from envs.world import EnvConfig, NavWorld
from features.store import default_store_path, open_feature_store
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
    """The data root: given, else the synthetic world (``vln.synthetic.default_data_dir()``)."""
    if data_dir is not None:
        return Path(data_dir)
    from vln.synthetic import default_data_dir

    return Path(default_data_dir())


def extraction_command(encoder: str, data_dir: Path, out: Path) -> str:
    return (f"python scripts/extract_features.py --encoder {encoder} --scans-dir {data_dir if encoder == 'synthetic_semantic' else data_dir / 'scans'} "
            f"--connectivity {data_dir / 'connectivity'} --out {out}")


def ensure_data(dataset: str, data_dir: Path, features: str | None, auto: bool = True) -> None:
    """Make sure the data root (and the feature store) exists; build the synthetic world if allowed.

    Raises:
        FileNotFoundError: missing data that cannot be built here; the message names the command.
    """
    if dataset == "synthetic" and not (data_dir / "world.json").exists():
        cmd = f"python scripts/make_world.py --out {data_dir}"
        if not auto:
            raise FileNotFoundError(f"no synthetic world at {data_dir}; build it with: {cmd}")
        logger.info("no synthetic world at %s: generating it (%s)", data_dir, cmd)
        from vln.synthetic import generate_world

        generate_world(data_dir)
    elif dataset == "synthetic":
        from vln.synthetic import stale_world_message

        stale = stale_world_message(data_dir)
        if stale:
            logger.warning(stale)
    if features is None or features in NO_FEATURES or Path(features).suffix:
        return
    store = default_store_path(data_dir, features)
    if store.exists():
        return
    cmd = extraction_command(features, data_dir, store)
    if auto and features == "synthetic_semantic" and (data_dir / "world.json").exists():
        logger.info("no %s features at %s: extracting them (%s)", features, store, cmd)
        from features.extract import run_extraction

        run_extraction(features, data_dir, data_dir / "connectivity", store, progress=False)
        return
    raise FileNotFoundError(f"no feature store for encoder {features!r} at {store}; build it with: {cmd}")


def open_store(data_dir: Path, features: str | None):
    """A FeatureStore for an encoder name or path, or None for zero visual features."""
    if features is None or features in NO_FEATURES:
        return None
    path = Path(features) if Path(features).suffix else default_store_path(data_dir, features)
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
