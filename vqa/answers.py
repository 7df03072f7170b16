"""The answer vocabulary and the soft targets VQA models are trained against.

* vocabulary: answers (normalised as the official evaluation normalises a prediction,
  :func:`vqa.metric.normalize_prediction`) whose ``multiple_choice_answer`` count in the training
  annotations is at least ``min_count`` (9 for VQA v2 train+val gives 3,129), ordered by
  decreasing count then alphabetically; or read from an ``ans2label`` JSON file
  (``{answer: label}`` with labels 0..n-1, as LXMERT / MCAN ship it).
* soft score of an answer given by k of the ten annotators: 1 -> 0.3, 2 -> 0.6, 3 -> 0.9,
  >= 4 -> 1.0 (bottom-up-attention-vqa's ``get_score``), or, with ``exact=True``, the official
  leave-one-out accuracy the answer would score (:func:`vqa.metric.question_accuracy`).
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Mapping, Sequence

from vln.errors import DataFormatError
from vln.io_utils import atomic_write_json, read_json

from .metric import normalize_prediction, question_accuracy

VQA_MIN_COUNT = 9


def soft_score(count: int) -> float:
    """Soft target of an answer given by ``count`` of the ten annotators (0, 0.3, 0.6, 0.9, 1.0)."""
    return (0.0, 0.3, 0.6, 0.9)[count] if count < 4 else 1.0


class AnswerVocab:
    """Answers <-> class labels.

    Args:
        answers: the answers in label order (label i is ``answers[i]``); must be distinct.
    """

    def __init__(self, answers: Sequence[str]):
        self.answers = list(answers)
        self.ans2label = {a: i for i, a in enumerate(self.answers)}
        if len(self.ans2label) != len(self.answers):
            raise ValueError("answer vocabulary holds duplicates")

    def __len__(self) -> int:
        return len(self.answers)

    def __contains__(self, answer: str) -> bool:
        return answer in self.ans2label

    @classmethod
    def from_counts(cls, answers: Iterable[str], min_count: int = VQA_MIN_COUNT) -> "AnswerVocab":
        """Answers seen at least ``min_count`` times (after normalisation), most frequent first."""
        counts = Counter(normalize_prediction(a) for a in answers)
        kept = sorted((a for a, n in counts.items() if n >= min_count and a), key=lambda a: (-counts[a], a))
        if not kept:
            raise ValueError(f"no answer is seen {min_count} times or more; lower the minimum count")
        return cls(kept)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "AnswerVocab":
        """Read an ``ans2label`` JSON object ``{answer: label}`` (labels exactly 0..n-1) or a
        ``label2ans`` list."""
        data = read_json(path)
        if isinstance(data, list):
            for i, a in enumerate(data):
                if not isinstance(a, str):
                    raise DataFormatError(path, f"label {i}", None, "must be an answer string")
            return cls(data)
        if not isinstance(data, dict):
            raise DataFormatError(path, None, None, "must be an {answer: label} object or an answer list")
        labels = sorted(data.items(), key=lambda kv: kv[1] if isinstance(kv[1], int) else -1)
        for i, (answer, label) in enumerate(labels):
            if label != i or isinstance(label, bool):
                raise DataFormatError(path, f"answer {answer!r}", "label", f"labels must be 0..{len(data) - 1} once each, got {label!r}")
        return cls([a for a, _ in labels])

    def save(self, path: str | os.PathLike) -> None:
        """Write ``{answer: label}`` atomically."""
        atomic_write_json(Path(path), self.ans2label, indent=0)

    def targets(self, labels: Mapping[str, float]) -> dict[int, float]:
        """{label: score} of the answers of ``labels`` that are in the vocabulary."""
        return {self.ans2label[a]: s for a, s in labels.items() if a in self.ans2label and s > 0}


def answer_scores(answers: Sequence[Mapping], exact: bool = False) -> dict[str, float]:
    """Soft score of each distinct (normalised) answer of one question's ten answer records.

    Args:
        answers: the annotation's ``answers`` records (``answer``, ``answer_confidence``, ``answer_id``).
        exact: the official leave-one-out accuracy of each answer instead of the count table.
    """
    counts = Counter(normalize_prediction(a["answer"]) for a in answers)
    if exact:
        return {a: question_accuracy(a, answers) for a in counts if a}
    return {a: soft_score(n) for a, n in counts.items() if a}
