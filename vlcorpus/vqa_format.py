"""VQA v2 and GQA question files: official field lists, writers and validating readers.

VQA v2 (visualqa.org): ``v2_OpenEnded_mscoco_<subtype>_questions.json`` holds ``questions:
[{image_id, question, question_id}]``; ``v2_mscoco_<subtype>_annotations.json`` holds
``annotations: [{question_id, image_id, question_type, answer_type, multiple_choice_answer,
answers: [{answer, answer_confidence, answer_id}] x 10}]``. GQA: ``<split>_balanced_questions.json``
maps a question id to ``{imageId, question, answer, fullAnswer, types, semantic, ...}``.
"""
from __future__ import annotations

import os
from pathlib import Path

from vln.errors import DataFormatError
from vln.io_utils import read_json

VQA_QUESTIONS_FILE = "v2_OpenEnded_mscoco_{subtype}_questions.json"
VQA_ANNOTATIONS_FILE = "v2_mscoco_{subtype}_annotations.json"
GQA_FILE = "{split}_balanced_questions.json"

VQA_QUESTIONS_TOP = ("info", "task_type", "data_type", "license", "data_subtype", "questions")
VQA_QUESTION_FIELDS = ("image_id", "question", "question_id")
VQA_ANNOTATIONS_TOP = ("info", "license", "data_subtype", "annotations", "data_type")
VQA_ANNOTATION_FIELDS = ("question_id", "image_id", "question_type", "answer_type", "multiple_choice_answer", "answers")
VQA_ANSWER_FIELDS = ("answer", "answer_confidence", "answer_id")
VQA_ANSWER_TYPES = ("yes/no", "number", "other")
GQA_FIELDS = ("semantic", "entailed", "equivalent", "question", "imageId", "isBalanced", "groups", "answer",
              "semanticStr", "annotations", "types", "fullAnswer")
GQA_TYPES = ("structural", "semantic", "detailed")

_INFO = {"description": "clipvil synthetic V&L corpus (VQA v2 format)", "version": "2.0", "year": 2017}
_LICENSE = {"name": "generated", "url": ""}


def vqa_files(subtype: str, question_records: list[dict], annotation_records: list[dict]) -> dict[str, dict]:
    """{file name: JSON} of one VQA v2 subtype (``train2014``...)."""
    return {
        VQA_QUESTIONS_FILE.format(subtype=subtype): {
            "info": _INFO, "task_type": "Open-Ended", "data_type": "mscoco", "license": _LICENSE,
            "data_subtype": subtype, "questions": question_records},
        VQA_ANNOTATIONS_FILE.format(subtype=subtype): {
            "info": _INFO, "license": _LICENSE, "data_subtype": subtype, "annotations": annotation_records,
            "data_type": "mscoco"},
    }


def gqa_semantic_str(program) -> str:
    """GQA's ``semanticStr``: ``op: arg [deps]`` joined by ``->``."""
    return "->".join(f"{op}: {arg}" + (f" [{', '.join(str(d) for d in deps)}]" if deps else "")
                     for op, arg, deps in program)


def _require(path, record, obj: dict, fields, what: str = ""):
    if not isinstance(obj, dict):
        raise DataFormatError(path, record, None, f"must be a JSON object{what}, got {type(obj).__name__}")
    for f in fields:
        if f not in obj:
            raise DataFormatError(path, record, f, "is missing")


def read_vqa(directory: str | os.PathLike, subtype: str) -> tuple[list[dict], dict[int, dict]]:
    """Read and join a VQA v2 subtype.

    Returns:
        questions: the ``questions`` list; annotations: question_id -> annotation (empty dict when
        the subtype has no annotation file, like the real test2015).

    Raises:
        FileNotFoundError: no questions file. DataFormatError: a missing field, not ten answers, an
        unknown answer type, or an annotation for a question not in the questions file, naming
        the file, the question id and the field.
    """
    d = Path(directory)
    apath = d / VQA_ANNOTATIONS_FILE.format(subtype=subtype)
    return read_vqa_files(d / VQA_QUESTIONS_FILE.format(subtype=subtype), apath if apath.exists() else None)


def read_vqa_files(qpath: str | os.PathLike, apath: str | os.PathLike | None = None) -> tuple[list[dict], dict[int, dict]]:
    """:func:`read_vqa` of a questions file and an annotations file given by path (``apath``
    None: no annotations, a test split)."""
    qpath = Path(qpath)
    data = read_json(qpath)
    _require(qpath, None, data, VQA_QUESTIONS_TOP)
    questions = data["questions"]
    ids = set()
    for i, q in enumerate(questions):
        _require(qpath, f"questions[{i}]", q, VQA_QUESTION_FIELDS)
        ids.add(q["question_id"])
    annotations = {}
    if apath is not None:
        data = read_json(apath)
        _require(apath, None, data, VQA_ANNOTATIONS_TOP)
        for a in data["annotations"]:
            qid = a.get("question_id") if isinstance(a, dict) else None
            rec = f"question_id {qid}"
            _require(apath, rec, a, VQA_ANNOTATION_FIELDS)
            if qid not in ids:
                raise DataFormatError(apath, rec, "question_id", f"is not in {qpath.name}")
            if a["answer_type"] not in VQA_ANSWER_TYPES:
                raise DataFormatError(apath, rec, "answer_type", f"{a['answer_type']!r} is not one of {VQA_ANSWER_TYPES}")
            if not isinstance(a["answers"], list) or len(a["answers"]) != 10:
                raise DataFormatError(apath, rec, "answers", "must hold 10 answers")
            for ans in a["answers"]:
                _require(apath, rec, ans, VQA_ANSWER_FIELDS, " in answers")
            annotations[qid] = a
    return questions, annotations


def read_gqa(directory: str | os.PathLike, split: str) -> dict[str, dict]:
    """Read ``<split>_balanced_questions.json``: question id -> record, every GQA field checked."""
    path = Path(directory) / GQA_FILE.format(split=split)
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, None, None, "must map question ids to questions")
    for qid, q in data.items():
        _require(path, f"question {qid}", q, GQA_FIELDS)
        _require(path, f"question {qid}", q["types"], GQA_TYPES, " in types")
    return data
