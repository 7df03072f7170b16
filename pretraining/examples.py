"""Pre-training examples: a pair (image, sentence, answers) -> the tensors of one training example.

Everything random about an example (the ITM swap, the MLM masks, which cells of its image are kept)
comes from one generator seeded by (run seed, epoch, pair index) (:func:`pretraining.objectives.example_seed`),
so the example is the same whichever process, data-loader worker or batch position it lands in:
that is what makes a DistributedDataParallel step equal to one process taking the whole batch, and
a resumed run equal to an uninterrupted one.

An example (:meth:`PretrainExamples.__getitem__`), stacked by ``torch.utils.data.default_collate``::

    input_ids (L,) int64   attention_mask (L,) int64   mlm_labels (L,) int64 (IGNORE where not masked)
    itm_label () int64 (1: the pair's own sentence, 0: another image's)
    text_source () int64 the shown sentence's source (index into ``pairs.sources``: captions, vqa, ...)
    qa_target (A,) float32 soft answer scores   qa_valid () bool (a question with an answer in the table)
    images (3, H, W) uint8   image_sizes (2,) int64 (content h, w)   cell_seeds () int64

or, from a store of precomputed cells (:class:`pretraining.cells.StoreCells`), ``cells`` (C, h, w)
float32 and ``cell_mask`` (h, w) bool in place of ``images`` and ``image_sizes``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
from torch.utils.data import Dataset

from .objectives import example_seed, itm_partner, mask_tokens


class PretrainExamples(Dataset):
    """Training examples over pairs (see the module docstring).

    Args:
        pairs: :class:`pretraining.pairs.Pairs` (``pairs[i]`` has ``image_id``, ``text`` and
            ``labels``: ``{answer: score}`` for a question, None for a caption; ``pairs.image_of``
            (N,) the image index of each pair).
        images: ``images[image_id] -> ((3, H, W) uint8, (h, w))``, every image the same canvas, or
            a :class:`pretraining.cells.StoreCells`.
        tokenizer: WordPiece (``encode(texts) -> (ids, mask)``, ``special_ids``, ``mask_id``, ``vocab_size``).
        answers: the answer table (``ans2label``), or None (no QA).
        seed: the run's seed.
        itm: draw ITM negatives (False: every sentence kept, e.g. for fine-tuning-style evaluation).
    """

    def __init__(self, pairs: Sequence, images: Mapping, tokenizer, answers=None, seed: int = 0, itm: bool = True):
        self.pairs, self.images, self.tokenizer, self.answers = pairs, images, tokenizer, answers
        self.seed, self.itm, self.epoch = int(seed), itm, 0
        self.image_of, self.source_of = pairs.image_of, pairs.source_of
        self.special = torch.tensor(sorted(tokenizer.special_ids), dtype=torch.int64)
        self.num_answers = len(answers) if answers is not None else 0

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Examples of ``epoch`` (a data loader's workers copy the dataset when an epoch's iterator starts)."""
        self.epoch = int(epoch)

    def __getitem__(self, index: int) -> dict:
        g = torch.Generator().manual_seed(example_seed(self.seed, self.epoch, index))
        pair = self.pairs[index]
        partner = itm_partner(index, self.image_of, g) if self.itm else None
        sentence = pair.text if partner is None else self.pairs[partner].text
        ids, mask = self.tokenizer.encode([sentence])
        ids, mask = ids[0], mask[0]
        inputs, labels = mask_tokens(ids, torch.isin(ids, self.special), self.tokenizer.vocab_size,
                                     self.tokenizer.mask_id, g)
        target = torch.zeros(self.num_answers)
        if pair.labels and self.answers is not None:
            for label, score in self.answers.targets(pair.labels).items():
                target[label] = score
        visual, extent = self.images[pair.image_id]
        if getattr(self.images, "kind", "images") == "cells":
            visual = {"cells": visual, "cell_mask": extent}
        else:
            visual = {"images": visual, "image_sizes": torch.tensor(extent, dtype=torch.int64)}
        return {"input_ids": inputs, "attention_mask": mask.long(), "mlm_labels": labels,
                "itm_label": torch.tensor(int(partner is None)),
                "text_source": torch.tensor(int(self.source_of[index if partner is None else partner])),
                "qa_target": target,
                "qa_valid": torch.tensor(bool(target.sum() > 0)), **visual,
                "cell_seeds": torch.randint(2**62, (), generator=g)}


MODEL_KEYS = ("input_ids", "attention_mask", "images", "image_sizes", "cells", "cell_mask", "cell_seeds")


def to_device(batch: dict, device: torch.device) -> dict:
    """Every tensor of ``batch`` on ``device`` (non-blocking from pinned memory)."""
    return {k: v.to(device, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}
