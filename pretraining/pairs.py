"""Image-text pairs for CLIP-ViLp pre-training: the synthetic corpus (default) or LXMERT-format JSON.

A pair is one sentence of one image, as LXMERT builds them: every sentence of every source in an
image's ``sentf`` is a pair; a sentence of a QA source (one that ``labelf`` also holds: ``vqa``,
``gqa``, ``visual7w``) carries its answer scores ``{answer: score}`` and feeds the QA objective,
a caption (``mscoco``, ``vg``) carries ``None``. Every sentence feeds MLM and ITM.

LXMERT format (``mscoco_train.json``, ``mscoco_minival.json``, ``vgnococo.json``): a JSON list of
``{img_id, sentf: {source: [sentence, ...]}, labelf: {source: [{answer: score}, ...]}}`` with one
label dict per sentence of a QA source (``shared/reference/siblings.md``); other fields are ignored.

Public API::

    pairs = synthetic_pairs(corpus_dir=None, split="train")   # "train" | "val" (held-out houses) | "test"
    pairs = lxmert_pairs(["mscoco_train.json", "vgnococo.json"], images_dir="images/")
    len(pairs); pairs[i] -> Pair(image_id, image_path, text, source, labels)
    pairs.texts, pairs.image_of (int array: pair -> image index), pairs.image_ids, pairs.image_paths
    pairs.qa_answers() -> one answer per QA sentence (its best score), for vqa.answers.AnswerVocab
    PairDataset(pairs, images)[i] -> {"index", "image_id", "image" (3, H, W) uint8, "size" (2,), "text", "labels"}
    collate(items) -> {"index" (B,), "image" (B, 3, H, W) uint8, "size" (B, 2), "text" [B], "labels" [B]}

``images`` is any source ``images[key] -> ((3, H, W) uint8, (h, w))``: :class:`pretraining.images.FolderImages`
(decoded files) or :class:`pretraining.shards.ShardImages` (pre-resized shards). Normalise the
batch on the device with :func:`pretraining.images.normalize`.

Malformed input raises :class:`vln.errors.DataFormatError` naming the file, the record (``img_id``)
and the field (``sentf.vqa[2]``); an ``img_id`` with no image file under the folder is one too.
Pairs are held as columns (one Python string per sentence, ints in NumPy arrays), never images.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from vln.errors import DataFormatError

from .images import image_key, index_images

#: Synthetic corpus split -> its LXMERT file and image folder (train / held-out houses).
SYNTHETIC_SPLITS = {"train": ("mscoco_train", "train2014"), "val": ("mscoco_minival", "val2014"),
                    "test": ("mscoco_test", "test2015")}


@dataclass(frozen=True)
class Pair:
    """One sentence of one image.

    Attributes:
        image_id: image key (:func:`pretraining.images.image_key` of the LXMERT ``img_id``).
        image_path: the image file, or None when the images come from shards only.
        text: the sentence (a caption or a question).
        source: its ``sentf`` source (``mscoco``, ``vg``, ``vqa``, ``gqa``, ``visual7w`` ...).
        labels: ``{answer: score}`` for a question of a QA source, else None.
    """

    image_id: str
    image_path: Path | None
    text: str
    source: str
    labels: dict | None


class Pairs:
    """Pairs as columns: ``texts`` [N], ``image_of`` (N,) int32 into ``image_ids`` / ``image_paths``,
    ``source_of`` (N,) int16 into ``sources``, ``labels`` {pair index: {answer: score}}."""

    def __init__(self, image_ids: list[str], image_paths: list[Path | None], texts: list[str], image_of,
                 sources: list[str], source_of, labels: dict[int, dict]):
        self.image_ids, self.image_paths, self.texts = image_ids, image_paths, texts
        self.image_of = np.asarray(image_of, dtype=np.int32)
        self.sources, self.source_of = sources, np.asarray(source_of, dtype=np.int16)
        self.labels = labels

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> Pair:
        img = int(self.image_of[i])
        return Pair(self.image_ids[img], self.image_paths[img], self.texts[i], self.sources[int(self.source_of[i])],
                    self.labels.get(int(i)))

    def qa_answers(self) -> list[str]:
        """The best-scored answer of each QA sentence (ties: the first), in pair order."""
        return [max(lab, key=lab.get) for _, lab in sorted(self.labels.items()) if lab]

    def image_index(self) -> dict[str, Path | None]:
        """Image key -> path of the images these pairs use."""
        return dict(zip(self.image_ids, self.image_paths))


def _sentence(path, rec, field, value) -> str:
    if not isinstance(value, str) or not value.strip():
        raise DataFormatError(path, rec, field, f"must be a non-empty sentence, got {value!r}")
    return value


def _labels(path, rec, field, value) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, (int, float))
                                              and not isinstance(v, bool) and 0 <= v <= 1 for k, v in value.items()):
        raise DataFormatError(path, rec, field, f"must map answers to scores in [0, 1], got {value!r}")
    return {k: float(v) for k, v in value.items()}


class _Builder:
    def __init__(self):
        self.image_ids, self.image_paths, self.where = [], [], {}
        self.texts, self.image_of, self.sources, self.source_of, self.labels = [], [], [], [], {}

    def image(self, key: str, path: Path | None) -> int:
        if key not in self.where:
            self.where[key] = len(self.image_ids)
            self.image_ids.append(key)
            self.image_paths.append(path)
        return self.where[key]

    def add(self, img: int, text: str, source: str, labels: dict | None) -> None:
        if source not in self.sources:
            self.sources.append(source)
        if labels is not None:
            self.labels[len(self.texts)] = labels
        self.texts.append(text)
        self.image_of.append(img)
        self.source_of.append(self.sources.index(source))

    def build(self) -> Pairs:
        return Pairs(self.image_ids, self.image_paths, self.texts, self.image_of, self.sources, self.source_of,
                     self.labels)


def _read_lxmert_file(path: Path, builder: _Builder, images: dict[str, Path] | None, images_dir,
                      sources: Sequence[str] | None) -> None:
    from vlcorpus import read_lxmert

    for i, d in enumerate(read_lxmert(path)):  # fields and labelf lengths checked there
        rec = f"img_id {d['img_id']}"
        if not isinstance(d["img_id"], (str, int)) or isinstance(d["img_id"], bool):
            raise DataFormatError(path, f"record {i}", "img_id", f"must be a string, got {d['img_id']!r}")
        if not isinstance(d["sentf"], dict) or not isinstance(d["labelf"], dict):
            raise DataFormatError(path, rec, "sentf" if not isinstance(d["sentf"], dict) else "labelf",
                                  "must map sources to lists")
        key = image_key(d["img_id"])
        if images is not None and key not in images:
            raise DataFormatError(path, rec, "img_id", f"no image file for it under {images_dir}")
        img = None
        for source, sents in d["sentf"].items():
            if sources is not None and source not in sources:
                continue
            if not isinstance(sents, list):
                raise DataFormatError(path, rec, f"sentf.{source}", "must be a list of sentences")
            labels = d["labelf"].get(source)
            for j, sent in enumerate(sents):
                text = _sentence(path, rec, f"sentf.{source}[{j}]", sent)
                lab = None if labels is None else _labels(path, rec, f"labelf.{source}[{j}]", labels[j])
                if img is None:
                    img = builder.image(key, images[key] if images is not None else None)
                builder.add(img, text, source, lab)


def lxmert_pairs(json_paths: str | os.PathLike | Sequence[str | os.PathLike], images_dir: str | os.PathLike | None = None,
                 sources: Sequence[str] | None = None, images: dict[str, Path] | None = None) -> Pairs:
    """Pairs of LXMERT pre-training files, in file, record, source and sentence order.

    Args:
        json_paths: one file or several (``mscoco_train.json``, ``mscoco_nominival.json``, ``vgnococo.json``).
        images_dir: folder holding every ``img_id``'s image (``COCO_train2014_000000000009.jpg`` or
            ``<id>.jpg``, any depth); None when the images come from shards (``image_path`` None).
        sources: keep only these ``sentf`` sources (e.g. ``["mscoco", "vg"]``); None keeps all.
        images: an image index already made (:func:`pretraining.images.index_images`), instead of ``images_dir``.
    """
    if isinstance(json_paths, (str, os.PathLike)):
        json_paths = [json_paths]
    if images is None and images_dir is not None:
        images = index_images(images_dir)
    builder = _Builder()
    for p in json_paths:
        _read_lxmert_file(Path(p), builder, images, images_dir, sources)
    pairs = builder.build()
    if not len(pairs):
        raise DataFormatError(", ".join(str(p) for p in json_paths), None, "sentf",
                              f"hold no sentence{'' if sources is None else f' of the sources {list(sources)}'}")
    return pairs


def synthetic_pairs(corpus_dir: str | os.PathLike | None = None, split: str = "train",
                    sources: Sequence[str] | None = None) -> Pairs:
    """Pairs of the synthetic V&L corpus (built on first use when ``corpus_dir`` is None).

    Args:
        split: ``train`` (the world's training houses), ``val`` (held-out houses) or ``test``.
    """
    from vlcorpus import ensure_vl_corpus, read_corpus_meta

    if split not in SYNTHETIC_SPLITS:
        raise ValueError(f"synthetic split {split!r} is not one of {sorted(SYNTHETIC_SPLITS)}")
    corpus = ensure_vl_corpus() if corpus_dir is None else Path(corpus_dir)
    read_corpus_meta(corpus)
    name, folder = SYNTHETIC_SPLITS[split]
    return lxmert_pairs(corpus / "lxmert" / f"{name}.json", corpus / "images" / folder, sources=sources)


class PairDataset(torch.utils.data.Dataset):
    """Pairs with their images: item -> ``index``, ``image_id``, ``image`` (3, H, W) uint8, ``size``
    (2,) int64 = (h, w) of the image content, ``text``, ``labels`` ({answer: score} or None).

    Args:
        pairs: :class:`Pairs`.
        images: ``images[key] -> (pixels, size)`` (FolderImages, ShardImages).
    """

    def __init__(self, pairs: Pairs, images):
        missing = [k for k in pairs.image_ids if k not in images]
        if missing:
            raise KeyError(f"{len(missing)} images of the pairs are not in the image source, e.g. {missing[:3]}")
        self.pairs, self.images = pairs, images

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> dict:
        p = self.pairs[i]
        pix, size = self.images[p.image_id]
        return {"index": int(i), "image_id": p.image_id, "image": pix, "size": torch.tensor(size, dtype=torch.long),
                "text": p.text, "labels": p.labels}


def collate(items: list[dict]) -> dict:
    """Stack :class:`PairDataset` items (every image has the same canvas)."""
    return {"index": torch.tensor([it["index"] for it in items], dtype=torch.long),
            "image_id": [it["image_id"] for it in items],
            "image": torch.stack([it["image"] for it in items]),
            "size": torch.stack([it["size"] for it in items]),
            "text": [it["text"] for it in items],
            "labels": [it["labels"] for it in items]}
