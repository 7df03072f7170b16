"""Question files -> :class:`QAExample` lists: VQA v2 (official), the LXMERT VQA / GQA JSON, GQA balanced.

Formats:

* VQA v2: ``v2_OpenEnded_mscoco_<subtype>_questions.json`` + ``v2_mscoco_<subtype>_annotations.json``
  (read and validated by :func:`vlcorpus.read_vqa`); a test subtype has no annotations.
* LXMERT VQA (``data/vqa/{train,nominival,minival}.json``): a list of ``{question_id, img_id
  ("COCO_train2014_000000458752"), sent, label: {answer: score}, answer_type?, question_type?}``;
  LXMERT GQA (``data/gqa/*.json``): ``{question_id, img_id, sent, label}``; test files have no label.
* GQA balanced questions: ``{question_id: {imageId, question, answer, ...}}``.

Image ids are the keys of the image grid store: ``str(cocoid)`` for COCO names
(``COCO_val2014_000000000042`` -> ``"42"``), the id as given otherwise.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from vln.errors import DataFormatError
from vln.io_utils import read_json

from .answers import answer_scores

_COCO_NAME = re.compile(r"^COCO_[a-z]+\d{4}_(\d+)$")


@dataclass
class QAExample:
    """One question.

    Attributes:
        question_id: as in the file (int for VQA v2, str for GQA).
        image_id: key of the image in the grid store (str).
        question: the question text.
        labels: answer -> soft score (empty when the split has no answers).
        answers: the ten VQA v2 answer records (for the official accuracy), else empty.
        answer_type, question_type: VQA v2 types ("" when unknown).
        multiple_choice_answer: VQA v2's most frequent answer ("" when unknown).
    """

    question_id: int | str
    image_id: str
    question: str
    labels: dict[str, float] = field(default_factory=dict)
    answers: list[dict] = field(default_factory=list)
    answer_type: str = ""
    question_type: str = ""
    multiple_choice_answer: str = ""


def image_key(image_id) -> str:
    """Grid-store key of an image id: ``str(int)`` of a COCO file stem or an int, else the string."""
    s = str(image_id)
    m = _COCO_NAME.match(s)
    return str(int(m.group(1))) if m else s


def load_vqa2(directory: str | os.PathLike, subtype: str, exact_scores: bool = False) -> list[QAExample]:
    """The questions of a VQA v2 subtype joined with their annotations (soft labels from the ten answers)."""
    from vlcorpus import read_vqa

    return _vqa2_examples(*read_vqa(directory, subtype), exact_scores)


def load_vqa2_files(questions: str | os.PathLike, annotations: str | os.PathLike | None = None,
                    exact_scores: bool = False) -> list[QAExample]:
    """:func:`load_vqa2` of an official questions file and (optionally) its annotations file by path."""
    from vlcorpus.vqa_format import read_vqa_files

    return _vqa2_examples(*read_vqa_files(questions, annotations), exact_scores)


def _vqa2_examples(questions: list[dict], annotations: dict, exact_scores: bool) -> list[QAExample]:
    out = []
    for q in questions:
        ann = annotations.get(q["question_id"])
        ex = QAExample(q["question_id"], image_key(q["image_id"]), q["question"])
        if ann is not None:
            ex.answers = ann["answers"]
            ex.labels = answer_scores(ann["answers"], exact=exact_scores)
            ex.answer_type, ex.question_type = ann["answer_type"], ann["question_type"]
            ex.multiple_choice_answer = ann["multiple_choice_answer"]
        out.append(ex)
    return out


def _lxmert_label(path, rec, label) -> dict[str, float]:
    if not isinstance(label, dict) or not all(isinstance(k, str) and isinstance(v, (int, float)) and 0 <= v <= 1
                                              for k, v in label.items()):
        raise DataFormatError(path, rec, "label", f"must map answers to scores in [0, 1], got {label!r}")
    return {k: float(v) for k, v in label.items()}


def load_lxmert(path: str | os.PathLike) -> list[QAExample]:
    """An LXMERT VQA or GQA question list (``label`` absent in test files)."""
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, None, None, "must be a JSON list of questions")
    out = []
    for i, d in enumerate(data):
        rec = f"question_id {d.get('question_id')}" if isinstance(d, dict) and "question_id" in d else f"record {i}"
        if not isinstance(d, dict):
            raise DataFormatError(path, rec, None, "must be a JSON object")
        for f in ("question_id", "img_id", "sent"):
            if f not in d:
                raise DataFormatError(path, rec, f, "is missing")
        if not isinstance(d["sent"], str):
            raise DataFormatError(path, rec, "sent", "must be a string")
        labels = _lxmert_label(path, rec, d["label"]) if "label" in d else {}
        out.append(QAExample(d["question_id"], image_key(d["img_id"]), d["sent"], labels,
                             answer_type=d.get("answer_type", ""), question_type=d.get("question_type", "")))
    return out


def load_gqa(path: str | os.PathLike) -> list[QAExample]:
    """GQA questions: the official balanced dict (``{qid: {imageId, question, answer}}``, answer
    absent in the test files) or an LXMERT list (a JSON list)."""
    data = read_json(path)
    if isinstance(data, list):
        return load_lxmert(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, None, None, "must map question ids to questions (or be an LXMERT list)")
    out = []
    for qid, q in data.items():
        rec = f"question {qid}"
        if not isinstance(q, dict):
            raise DataFormatError(path, rec, None, "must be a JSON object")
        for f in ("imageId", "question"):
            if f not in q:
                raise DataFormatError(path, rec, f, "is missing")
        labels = {}
        if "answer" in q:
            if not isinstance(q["answer"], str):
                raise DataFormatError(path, rec, "answer", "must be a string")
            labels = {q["answer"]: 1.0}
        out.append(QAExample(qid, image_key(q["imageId"]), q["question"], labels))
    return out


def train_answers(examples: list[QAExample]) -> list[str]:
    """The answers a vocabulary counts, one per question: VQA v2's ``multiple_choice_answer``,
    else the best-scored label (LXMERT, GQA)."""
    out = []
    for ex in examples:
        if ex.multiple_choice_answer:
            out.append(ex.multiple_choice_answer)
        elif ex.labels:
            out.append(max(ex.labels, key=ex.labels.get))
    return out
