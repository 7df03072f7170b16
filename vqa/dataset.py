"""A torch Dataset of questions over an image grid store, and the batch collation (padded grids).

A batch (:func:`collate`) is a dict of tensors::

    tokens    (B, T) int64      question word ids, 0 = padding
    grid      (B, H, W, C) f32  grid features, zero-padded to the batch's largest grid
    mask      (B, H, W) bool    True = a real cell
    pos       (B, H, W, 2) f32  cell centre (y, x) as a fraction of the image's own grid, 0 on padding
    target    (B, A) f32        soft scores over the answer vocabulary (zeros for unlabelled splits)
    index     (B,) int64        example index (for results export)
"""
from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from features.image_store import GridRecord, pad_grids

from .answers import AnswerVocab
from .data import QAExample
from .tokens import QuestionTokenizer


class VQADataset(Dataset):
    """Questions with their image's grid.

    Args:
        examples: the questions.
        store: an open :class:`features.image_store.ImageGridStore` holding every example's image.
        tokenizer, answers: question and answer vocabularies.
        preload: read every needed grid once into memory (small stores; the synthetic corpus).

    Raises:
        KeyError: an example's image is not in the store (message names the question and image).
    """

    def __init__(self, examples: list[QAExample], store, tokenizer: QuestionTokenizer, answers: AnswerVocab,
                 preload: bool = False):
        self.examples, self.store, self.tokenizer, self.answers = examples, store, tokenizer, answers
        for ex in examples:
            if ex.image_id not in store:
                raise KeyError(f"question {ex.question_id}: image {ex.image_id!r} is not in the grid store {store.path}")
        self._cache = None
        if preload:
            ids = sorted({ex.image_id for ex in examples})
            self._cache = dict(zip(ids, (store.get_record(i) for i in ids)))

    def __len__(self) -> int:
        return len(self.examples)

    def record(self, image_id: str) -> GridRecord:
        return self._cache[image_id] if self._cache is not None else self.store.get_record(image_id)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        target = np.zeros(len(self.answers), dtype=np.float32)
        for label, score in self.answers.targets(ex.labels).items():
            target[label] = score
        return {"tokens": self.tokenizer.encode(ex.question), "record": self.record(ex.image_id),
                "target": target, "index": i}


def cell_positions(h: int, w: int) -> np.ndarray:
    """(h, w, 2) float32 cell centres (y, x) in (0, 1)."""
    ys = (np.arange(h, dtype=np.float32) + 0.5) / h
    xs = (np.arange(w, dtype=np.float32) + 0.5) / w
    return np.stack(np.meshgrid(ys, xs, indexing="ij"), axis=-1)


def collate(items: list[dict]) -> dict:
    """Stack a list of :class:`VQADataset` items into the batch described in the module docstring."""
    records = [it["record"] for it in items]
    grid, mask = pad_grids(records)
    pos = np.zeros(grid.shape[:3] + (2,), dtype=np.float32)
    for b, r in enumerate(records):
        h, w = r.grid.shape[:2]
        pos[b, :h, :w] = cell_positions(h, w)
    return {"tokens": torch.from_numpy(np.stack([it["tokens"] for it in items])),
            "grid": torch.from_numpy(grid.astype(np.float32, copy=False)),
            "mask": torch.from_numpy(mask), "pos": torch.from_numpy(pos),
            "target": torch.from_numpy(np.stack([it["target"] for it in items])),
            "index": torch.tensor([it["index"] for it in items], dtype=torch.int64)}
