"""Where a training run's questions and grids come from: ``--dataset`` / ``--data-dir`` / ``--features``.

Datasets and their split names:

* ``synthetic``: the synthetic V&L corpus (``--data-dir`` a corpus folder; by default
  :func:`vlcorpus.ensure_vl_corpus`'s, built on first use), VQA v2 files under ``<corpus>/vqa``: ``train2014`` /
  ``val2014`` (held-out houses) / ``test2015`` (other held-out houses).
* ``vqa2``: official files ``v2_OpenEnded_mscoco_<split>_questions.json`` (+ annotations) in
  ``--data-dir``; or an LXMERT file ``<split>.json`` there (``train``, ``nominival``, ``minival``).
* ``gqa``: ``<split>_balanced_questions.json`` or an LXMERT ``<split>.json`` in ``--data-dir``.

``--features synthetic_semantic_grid`` is the corpus's semantic grid store (written on first use);
anything else is the path of an image grid store (``features.image_store``).
"""
from __future__ import annotations

from pathlib import Path

from vln.errors import VLNError

from .data import QAExample, load_gqa, load_lxmert, load_vqa2


class SettingError(VLNError, ValueError):
    """Settings that cannot go together (a one-line error in the scripts)."""

DATASETS = ("synthetic", "vqa2", "gqa")
DEFAULT_SPLITS = {"synthetic": ("train2014", "val2014"), "vqa2": ("train2014", "val2014"), "gqa": ("train", "val")}
SYNTHETIC_FEATURES = "synthetic_semantic_grid"


def corpus_dir(data_dir: str | None) -> Path:
    """A given corpus folder (it must hold a corpus), else the default one (built when absent)."""
    from vlcorpus import ensure_vl_corpus, read_corpus_meta

    if data_dir is None:
        return ensure_vl_corpus()
    read_corpus_meta(data_dir)
    return Path(data_dir)


def load_split(dataset: str, data_dir: str | None, split: str, exact_scores: bool = False) -> list[QAExample]:
    """The questions of ``split`` of ``dataset`` (see the module docstring)."""
    if dataset == "synthetic":
        return load_vqa2(corpus_dir(data_dir) / "vqa", split, exact_scores)
    if data_dir is None:
        raise FileNotFoundError(f"--data-dir is required for --dataset {dataset}")
    d = Path(data_dir)
    if dataset == "vqa2":
        if (d / f"{split}.json").exists():
            return load_lxmert(d / f"{split}.json")
        return load_vqa2(d, split, exact_scores)
    if dataset == "gqa":
        path = d / f"{split}_balanced_questions.json"
        return load_gqa(path if path.exists() else d / f"{split}.json")
    raise SettingError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")


def grid_store_path(features: str, dataset: str, data_dir: str | None) -> Path:
    """The image grid store of ``--features``."""
    if features == SYNTHETIC_FEATURES:
        if dataset != "synthetic":
            raise SettingError(f"--features {SYNTHETIC_FEATURES} exists only for --dataset synthetic")
        from features.semantic_grid import ensure_semantic_grid_store

        return ensure_semantic_grid_store(corpus_dir(data_dir), "vqa")
    path = Path(features)
    if not path.is_dir():
        raise FileNotFoundError(f"--features {features}: no image grid store there (and not {SYNTHETIC_FEATURES!r})")
    return path
