"""A torch Dataset of questions over an image grid store, and the batch collation (padded grids).

A batch (:func:`collate`) is a dict of tensors::

    tokens    (B, T) int64      question word ids, 0 = padding
    grid      (B, H, W, C)      grid features in the dataset's ``dtype`` (fp16 by default: half the
                                host memory and host-to-device bytes; ``vqa.predict.model_inputs``
                                casts to float32 on the device), zero-padded to the largest grid
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
        image_map: image id -> the image whose grid is served instead (the shuffled-image control).
        pool: average k x k blocks of cells first (:func:`pool_record`; 1 = the grid as stored).
        dtype: float dtype of the served grids (float16: what an fp16 store holds, read without
            a host-side cast; float32 for stores of other layouts or precisions).

    Raises:
        KeyError: an example's image is not in the store (message names the question and image).
    """

    def __init__(self, examples: list[QAExample], store, tokenizer: QuestionTokenizer, answers: AnswerVocab,
                 preload: bool = False, image_map: dict[str, str] | None = None, pool: int = 1,
                 dtype=np.float16):
        self.examples, self.store, self.tokenizer, self.answers = examples, store, tokenizer, answers
        self.image_map, self.pool, self.dtype = image_map or {}, pool, np.dtype(dtype)
        for ex in examples:
            if ex.image_id not in store:
                raise KeyError(f"question {ex.question_id}: image {ex.image_id!r} is not in the grid store {store.path}")
        self._cache = None
        if preload:
            ids = sorted({self.image_map.get(ex.image_id, ex.image_id) for ex in examples})
            self._cache = {i: self._read(i) for i in ids}

    def __len__(self) -> int:
        return len(self.examples)

    def _read(self, image_id: str) -> GridRecord:
        if self.pool == 1:
            return self.store.get_record(image_id, dtype=self.dtype)
        rec = pool_record(self.store.get_record(image_id), self.pool)
        return GridRecord(rec.grid.astype(self.dtype), rec.pooled, rec.mask)

    def record(self, image_id: str) -> GridRecord:
        if self._cache is not None:
            return self._cache[image_id]
        return self._read(image_id)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        target = np.zeros(len(self.answers), dtype=np.float32)
        for label, score in self.answers.targets(ex.labels).items():
            target[label] = score
        return {"tokens": self.tokenizer.encode(ex.question), "record": self.record(self.image_map.get(ex.image_id, ex.image_id)),
                "target": target, "index": i}


def pool_record(rec: GridRecord, k: int) -> GridRecord:
    """Average pooling of k x k blocks of valid cells: (H, W, C) -> (ceil(H/k), ceil(W/k), C).

    A block's value is the mean of its valid cells (those inside the grid and, when the record
    has a mask, True in it); a block without any is zero and invalid. ``k == 1`` returns ``rec``.
    Used to cut the cost of cell self-attention (quadratic in the cells) on a CPU.
    """
    if k == 1:
        return rec
    h, w, c = rec.grid.shape
    hp, wp = -(-h // k), -(-w // k)
    valid = np.zeros((hp * k, wp * k), dtype=np.float32)
    valid[:h, :w] = 1.0 if rec.mask is None else rec.mask
    grid = np.zeros((hp * k, wp * k, c), dtype=np.float32)
    grid[:h, :w] = rec.grid
    grid *= valid[..., None]
    sums = grid.reshape(hp, k, wp, k, c).sum(axis=(1, 3))
    counts = valid.reshape(hp, k, wp, k).sum(axis=(1, 3))
    pooled = sums / np.maximum(counts, 1.0)[..., None]
    return GridRecord(pooled.astype(np.float32), None if rec.pooled is None else rec.pooled, counts > 0)


def shuffled_images(image_ids, seed: int) -> dict[str, str]:
    """A seeded derangement of ``image_ids`` (every image served another's grid; needs >= 2 ids)."""
    ids = sorted(set(image_ids))
    if len(ids) < 2:
        raise ValueError("shuffling images needs at least two images")
    rng = np.random.default_rng(seed)
    shift = int(rng.integers(1, len(ids)))
    order = rng.permutation(len(ids))
    return {ids[order[i]]: ids[order[(i + shift) % len(ids)]] for i in range(len(ids))}


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
            "grid": torch.from_numpy(grid),
            "mask": torch.from_numpy(mask), "pos": torch.from_numpy(pos),
            "target": torch.from_numpy(np.stack([it["target"] for it in items])),
            "index": torch.tensor([it["index"] for it in items], dtype=torch.int64)}
