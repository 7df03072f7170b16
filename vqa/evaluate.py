"""Score a results file against official VQA v2 files, or a checkpoint on a split (``eval_vqa.py``)."""
from __future__ import annotations

import os
from pathlib import Path

from vln.errors import DataFormatError
from vln.io_utils import atomic_write_json, read_json

from .metric import index_results, vqa_accuracy

ANNOTATION_FIELDS = ("question_id", "question_type", "answer_type", "answers")


def read_annotation_file(path: str | os.PathLike) -> list[dict]:
    """The ``annotations`` of an official annotation file, each record's fields checked."""
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
        raise DataFormatError(path, None, "annotations", "must be a list under the top-level object")
    for i, a in enumerate(data["annotations"]):
        rec = f"question_id {a.get('question_id')}" if isinstance(a, dict) else f"annotations[{i}]"
        if not isinstance(a, dict):
            raise DataFormatError(path, rec, None, "must be a JSON object")
        for f in ANNOTATION_FIELDS:
            if f not in a:
                raise DataFormatError(path, rec, f, "is missing")
        if not isinstance(a["answers"], list) or not a["answers"]:
            raise DataFormatError(path, rec, "answers", "must be a non-empty list")
        for ans in a["answers"]:
            if not isinstance(ans, dict) or not isinstance(ans.get("answer"), str):
                raise DataFormatError(path, rec, "answers", "each answer needs an 'answer' string")
    return data["annotations"]


def score_files(results: str | os.PathLike, annotations: str | os.PathLike,
                questions: str | os.PathLike | None = None) -> dict:
    """The official accuracy of a results file (see :func:`vqa.metric.vqa_accuracy`).

    ``questions`` (optional) must hold the same question ids as the annotations, as the official
    VQA loader asserts.
    """
    anns = read_annotation_file(annotations)
    if questions is not None:
        qdata = read_json(questions)
        if not isinstance(qdata, dict) or not isinstance(qdata.get("questions"), list):
            raise DataFormatError(questions, None, "questions", "must be a list under the top-level object")
        qids = {q.get("question_id") for q in qdata["questions"] if isinstance(q, dict)}
        if qids != {a["question_id"] for a in anns}:
            raise DataFormatError(questions, None, "question_id", f"the questions and {Path(annotations).name} "
                                  "hold different question ids")
    predictions = index_results(read_json(results), [a["question_id"] for a in anns], source=results)
    return vqa_accuracy(anns, predictions)


def write_per_question(path: str | os.PathLike, per_question: dict) -> None:
    """``{question_id: accuracy}`` (percent, 2 decimals) as JSON, written atomically."""
    atomic_write_json(path, {str(k): v for k, v in per_question.items()}, indent=0)
