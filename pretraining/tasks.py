"""Fine-tuning tasks of CLIP-ViLp (paper Table 6): VQA, GQA and SNLI-VE, one registry entry each.

A :class:`Task` knows its files, its label table, its loss and its official score; the fine-tuning
loop (:mod:`pretraining.finetune`) knows none of them. Examples are :class:`TaskExample` (one
text, one image key, ``{label: score}``):

======== ============================================ ========================= ============================
task     files (synthetic corpus: built on first use) labels, loss               score
======== ============================================ ========================= ============================
vqa      VQA v2 ``v2_OpenEnded_mscoco_<split>_questions answers seen >= 9 times    the official VQA accuracy
         .json`` + annotations, or an LXMERT VQA list  (``vqa.answers``), soft     (``vqa.metric``, quirks
         (``vqa.data``); splits train2014 / val2014    scores 0.3/0.6/0.9/1, BCE   included); LXMERT lists:
                                                       summed over answers         mean label score
gqa      ``<split>_balanced_questions.json`` or an     every training answer,      exact-match accuracy
         LXMERT GQA list; splits train / val           BCE (as VQA)                (``vqa.metric.gqa_accuracy``)
snli_ve  ``snli_ve_<split>.jsonl`` (``Flikr30kID``,    entailment / neutral /      accuracy over the 3 classes
         ``pairID``, ``sentence2``, ``gold_label``);   contradiction, 3-way
         splits train / dev                            cross-entropy
======== ============================================ ========================= ============================

The paper's recipes (``shared/reference/siblings.md``): VQA 5 epochs, batch 256, AdamW 5e-5, backbone
SGD 1e-3 x0.1 after epoch 3; GQA the same; SNLI-VE 2 epochs. A task reads its files from one
folder: the real data's, or ``<synthetic corpus>/<task.folder>`` (``vqa/``, ``gqa/``, ``snli_ve/``
hold the official formats there).

Public API::

    TASKS.get("vqa") -> Task;  TASKS.names()
    task.load(folder, split) -> list[TaskExample];  task.folder (its sub-folder of the synthetic corpus)
    task.label_table(train_examples, min_answer_count) -> vqa.answers.AnswerVocab
    task.loss(logits, target) -> scalar;  task.score(examples, predicted_labels, table) -> {"overall": ..}
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from vln.registry import Registry


@dataclass
class TaskExample:
    """One fine-tuning example.

    Attributes:
        example_id: question id (VQA, GQA) or ``pairID`` (SNLI-VE).
        image_id: image key (:func:`pretraining.images.image_key`).
        text: the question or the hypothesis.
        labels: label -> target score (VQA soft scores, GQA ``{answer: 1}``, SNLI-VE ``{gold_label: 1}``).
        record: what the official score needs besides (the :class:`vqa.data.QAExample` of a VQA question).
    """

    example_id: int | str
    image_id: str
    text: str
    labels: dict[str, float] = field(default_factory=dict)
    record: object = None


@dataclass(frozen=True)
class Task:
    """A fine-tuning task (see the module docstring).

    Attributes:
        name: registry name. folder: its sub-folder of the synthetic corpus.
        splits: default (train, validation) splits.
        epochs, batch_size, lr, backbone_lr, backbone_milestones: the paper's recipe.
        loader: (folder or None, split) -> examples.
        classes: a fixed label table (SNLI-VE), or None to count answers of the training split.
        min_count: default answer count threshold for a counted table.
        loss_kind: ``"bce"`` (soft scores, summed over labels, mean over the batch) or ``"ce"``.
        scorer: (examples, predicted label strings) -> scores with ``overall`` in percent.
    """

    name: str
    folder: str
    splits: tuple[str, str]
    epochs: int
    loader: Callable
    scorer: Callable
    loss_kind: str
    classes: tuple | None = None
    min_count: int = 1
    batch_size: int = 256
    lr: float = 5e-5
    backbone_lr: float = 1e-3
    backbone_milestones: tuple = (3,)

    def load(self, folder: str | os.PathLike, split: str) -> list[TaskExample]:
        """The examples of ``split`` in ``folder``."""
        return self.loader(Path(folder), split)

    def label_table(self, train: list[TaskExample], min_count: int | None = None):
        """The labels the head predicts: the fixed classes, or the training answers seen ``min_count`` times."""
        from vqa.answers import AnswerVocab

        if self.classes is not None:
            return AnswerVocab(list(self.classes))
        best = [max(ex.labels, key=ex.labels.get) for ex in train if ex.labels]
        return AnswerVocab.from_counts(best, self.min_count if min_count is None else min_count)

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """(B, A) logits, (B, A) target scores -> the batch loss (mean over examples)."""
        if self.loss_kind == "bce":  # LXMERT / MCAN: BCE summed over the answers, averaged over the batch
            return F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum") / logits.shape[0]
        return F.cross_entropy(logits.float(), target.argmax(1))

    def score(self, examples: list[TaskExample], predicted: list[str]) -> dict:
        """Official scores of predicted label strings (one per example, in order)."""
        if len(predicted) != len(examples):
            raise ValueError(f"{len(predicted)} predictions for {len(examples)} examples")
        return self.scorer(examples, predicted)


# ---------------------------------------------------------------------------- VQA
def _from_qa(examples) -> list[TaskExample]:
    return [TaskExample(ex.question_id, ex.image_id, ex.question, dict(ex.labels), ex) for ex in examples]


def load_vqa(folder: Path, split: str) -> list[TaskExample]:
    from vqa.sources import load_split

    return _from_qa(load_split("vqa2", str(folder), split))


def score_vqa(examples: list[TaskExample], predicted: list[str]) -> dict:
    from vqa.predict import score

    return score([ex.record for ex in examples],
                 [{"question_id": ex.example_id, "answer": a} for ex, a in zip(examples, predicted)])


# ---------------------------------------------------------------------------- GQA
def load_gqa(folder: Path, split: str) -> list[TaskExample]:
    from vqa.sources import load_split

    return _from_qa(load_split("gqa", str(folder), split))


def score_gqa(examples: list[TaskExample], predicted: list[str]) -> dict:
    from vqa.metric import gqa_accuracy

    gold = {ex.example_id: max(ex.labels, key=ex.labels.get) for ex in examples if ex.labels}
    return {"overall": round(gqa_accuracy(dict(zip((ex.example_id for ex in examples), predicted)), gold), 2)}


# ---------------------------------------------------------------------------- SNLI-VE
SNLI_VE_CLASSES = ("entailment", "neutral", "contradiction")


def load_snli_ve(folder: Path, split: str) -> list[TaskExample]:
    from vlcorpus import read_snli_ve

    from .images import image_key

    path = folder / f"snli_ve_{split}.jsonl"
    return [TaskExample(r["pairID"], image_key(r["Flikr30kID"]), r["sentence2"], {r["gold_label"]: 1.0})
            for r in read_snli_ve(path)]


def score_accuracy(examples: list[TaskExample], predicted: list[str]) -> dict:
    gold = [max(ex.labels, key=ex.labels.get) for ex in examples]
    per = {c: [p == g for p, g in zip(predicted, gold) if g == c] for c in sorted(set(gold))}
    return {"overall": round(100.0 * sum(p == g for p, g in zip(predicted, gold)) / len(gold), 2),
            "perClass": {c: round(100.0 * sum(v) / len(v), 2) for c, v in per.items()}}


TASKS: Registry[Task] = Registry("fine-tuning task")
TASKS.register("vqa", Task("vqa", "vqa", ("train2014", "val2014"), epochs=5, loader=load_vqa, scorer=score_vqa,
                           loss_kind="bce", min_count=9))
TASKS.register("gqa", Task("gqa", "gqa", ("train", "val"), epochs=5, loader=load_gqa, scorer=score_gqa, loss_kind="bce"))
TASKS.register("snli_ve", Task("snli_ve", "snli_ve", ("train", "dev"), epochs=2, loader=load_snli_ve, scorer=score_accuracy,
                               loss_kind="ce", classes=SNLI_VE_CLASSES))
