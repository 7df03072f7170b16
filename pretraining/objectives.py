"""The three pre-training objectives of CLIP-ViLp (as LXMERT / BERT): what is drawn and what is scored.

Drawing (per example, from a generator seeded by :func:`example_seed`, so an example gets the same
masks and negatives whatever process, worker or batch it lands in):

* :func:`mask_tokens`: masked language modelling, BERT's recipe: each non-special token is chosen
  with p = 0.15; a chosen token becomes ``[MASK]`` 80% of the time, a uniformly random vocabulary
  id 10%, and stays itself 10%; labels are the original ids at chosen positions and
  :data:`IGNORE` elsewhere.
* :func:`itm_partner`: image-text matching: with p = 0.5 the sentence is replaced by the sentence of
  a uniformly drawn pair of *another* image (label 0), else kept (label 1).

Scoring (:func:`pretrain_losses`): cross-entropy of the masked tokens, cross-entropy of the ITM
classes, and binary cross-entropy of the answer table against soft scores for matched question
sentences only (LXMERT: a mismatched sentence has no answer). Each loss is a sum divided by a
normaliser given by the caller: the count over the whole *global* batch (every process, every
accumulation step), so that gradients equal those of one process taking the whole batch at once
(:mod:`pretraining.train` all-reduces the counts).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

#: Label of positions that are not scored (torch's cross-entropy ``ignore_index`` default).
IGNORE = -100
MLM_PROBABILITY = 0.15
ITM_NEGATIVE_PROBABILITY = 0.5


def example_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for example ``index`` of ``epoch`` in a run seeded ``seed`` (distinct triples
    give distinct seeds for any realistic sizes: index < 2^32, epoch < 2^16)."""
    return ((int(seed) & 0x7FFF) << 48 | (int(epoch) & 0xFFFF) << 32 | (int(index) & 0xFFFFFFFF)) & (2**63 - 1)


def mask_tokens(ids: torch.Tensor, special: torch.Tensor, vocab_size: int, mask_id: int,
                generator: torch.Generator, probability: float = MLM_PROBABILITY):
    """BERT masking of one sentence (see the module docstring).

    Args:
        ids: (L,) int64 token ids (with ``[CLS]``, ``[SEP]``, padding).
        special: (L,) bool, positions never chosen (special tokens and padding).
        vocab_size: random replacements are drawn from ``[0, vocab_size)`` (as BERT and Hugging Face).
        mask_id: the ``[MASK]`` id.
        generator: the example's generator.

    Returns:
        (inputs (L,) int64, labels (L,) int64 with :data:`IGNORE` where not chosen).
    """
    n = ids.shape[0]
    chosen = (torch.rand(n, generator=generator) < probability) & ~special
    action = torch.rand(n, generator=generator)
    random_ids = torch.randint(vocab_size, (n,), generator=generator)
    inputs = ids.clone()
    inputs[chosen & (action < 0.8)] = mask_id
    swap = chosen & (action >= 0.8) & (action < 0.9)
    inputs[swap] = random_ids[swap]
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    return inputs, labels


def itm_partner(index: int, image_ids, generator: torch.Generator,
                probability: float = ITM_NEGATIVE_PROBABILITY, max_tries: int = 100) -> int | None:
    """The pair whose sentence replaces pair ``index``'s (a pair of another image), or None (keep).

    Args:
        image_ids: the image (id or index) of every pair, indexable by pair (``Pairs.image_of``).

    Raises:
        ValueError: no pair of another image was drawn in ``max_tries`` (a corpus of one image).
    """
    if torch.rand(1, generator=generator).item() >= probability:
        return None
    n = len(image_ids)
    for _ in range(max_tries):
        j = int(torch.randint(n, (1,), generator=generator))
        if image_ids[j] != image_ids[index]:
            return j
    raise ValueError(f"no sentence of another image found for pair {index} in {max_tries} draws: "
                     "image-text matching needs pairs of at least two images")


def count_targets(batches) -> list[int]:
    """``[masked tokens, pairs, scored QA pairs]`` of a list of batches (one process's accumulation
    steps); sum them over processes before :meth:`Normalisers.from_counts`."""
    return [sum(int((b["mlm_labels"] != IGNORE).sum()) for b in batches),
            sum(int(b["itm_label"].numel()) for b in batches),
            sum(int(qa_rows(b).sum()) for b in batches)]


@dataclass
class Normalisers:
    """Denominators of the three losses in one process: masked tokens, pairs, scored QA pairs."""

    mlm: float
    itm: float
    qa: float

    @classmethod
    def from_counts(cls, counts, world_size: int = 1) -> "Normalisers":
        """From the global batch's counts (:func:`count_targets` summed over processes), divided by
        the number of processes because DistributedDataParallel averages their gradients: the
        result is the gradient of the global-batch mean, exactly as one process would compute it."""
        return cls(*(max(float(c), 1.0) / world_size for c in counts))


def qa_rows(batch) -> torch.Tensor:
    """(B,) bool: pairs whose QA loss counts (a question with an answer in the table, sentence kept)."""
    return batch["qa_valid"].bool() & (batch["itm_label"] == 1)


def pretrain_losses(model, encoded, batch, norm: Normalisers, qa_weight: float = 1.0) -> dict[str, torch.Tensor]:
    """The losses and accuracies of one (micro-)batch.

    Args:
        model: the :class:`pretraining.model.CLIPViLp` (its heads).
        encoded: ``model(...)``'s :class:`pretraining.model.Encoded`.
        batch: ``mlm_labels`` (B, L), ``itm_label`` (B,), ``qa_target`` (B, A) float soft scores,
            ``qa_valid`` (B,) bool.
        norm: the global-batch denominators.
        qa_weight: 0 before ``--qa-from-epoch`` (the head still runs, so every parameter gets a
            gradient and DistributedDataParallel needs no unused-parameter search), 1 after.

    Returns:
        ``loss`` (the sum to back-propagate), ``loss_mlm``, ``loss_itm``, ``loss_qa`` (summed over
        the micro-batch, divided by the global denominators) and counts of correct predictions
        ``mlm_correct``, ``itm_correct``, ``qa_correct`` (no gradient).
    """
    labels = batch["mlm_labels"]
    chosen = labels != IGNORE
    mlm = model.mlm_logits(encoded.text[chosen]).float()
    loss_mlm = F.cross_entropy(mlm, labels[chosen], reduction="sum") / norm.mlm
    itm = model.itm_logits(encoded.pooled).float()
    loss_itm = F.cross_entropy(itm, batch["itm_label"], reduction="sum") / norm.itm
    rows = qa_rows(batch)
    if model.qa_head is None:  # no answer table (caption-only pairs): no QA loss
        loss_qa = qa_correct = itm.new_zeros(())
    else:
        qa = model.qa_logits(encoded.pooled).float()
        bce = F.binary_cross_entropy_with_logits(qa, batch["qa_target"].float(), reduction="none").sum(1)
        loss_qa = (bce * rows).sum() / norm.qa * qa_weight
        with torch.no_grad():  # LXMERT's QA accuracy: the predicted label is the best-scored answer
            qa_correct = ((qa.argmax(1) == batch["qa_target"].argmax(1)) & rows).sum()
    with torch.no_grad():
        stats = {"mlm_correct": (mlm.argmax(1) == labels[chosen]).sum(),
                 "itm_correct": (itm.argmax(1) == batch["itm_label"]).sum(), "qa_correct": qa_correct}
    return {"loss": loss_mlm + loss_itm + loss_qa, "loss_mlm": loss_mlm, "loss_itm": loss_itm, "loss_qa": loss_qa,
            **stats}
