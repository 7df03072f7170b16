"""Captioning and pre-training files: Karpathy ``dataset_coco.json``, COCO caption references,
LXMERT pre-training JSON and SNLI-VE jsonl (official field lists, validating readers).

* Karpathy: ``{dataset, images: [{filepath, filename, imgid, cocoid, split, sentids, sentences:
  [{tokens, raw, imgid, sentid}]}]}``, split in ``train | restval | val | test``.
* COCO references: ``{info, licenses, type, images: [{id, file_name, height, width}],
  annotations: [{id, image_id, caption}]}``.
* LXMERT: a list of ``{img_id, sentf: {source: [sentence]}, labelf: {source: [{answer: score}]}}``.
* SNLI-VE: one JSON object a line with ``Flikr30kID`` (sic), ``pairID``, ``captionID``,
  ``sentence1``, ``sentence2``, ``gold_label``, ``annotator_labels``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from vln.errors import DataFormatError
from vln.io_utils import iter_jsonl, read_json

from .vqa_format import _require

KARPATHY_FILE = "dataset_coco.json"
KARPATHY_IMAGE_FIELDS = ("filepath", "filename", "imgid", "cocoid", "split", "sentids", "sentences")
KARPATHY_SENTENCE_FIELDS = ("tokens", "raw", "imgid", "sentid")
KARPATHY_SPLITS = ("train", "restval", "val", "test")
COCO_CAPTIONS_FILE = "captions_{folder}.json"
COCO_TOP = ("info", "licenses", "type", "images", "annotations")
COCO_IMAGE_FIELDS = ("id", "file_name", "height", "width")
COCO_ANNOTATION_FIELDS = ("id", "image_id", "caption")
LXMERT_FIELDS = ("img_id", "sentf", "labelf")
SNLI_VE_FILE = "snli_ve_{split}.jsonl"
SNLI_VE_FIELDS = ("Flikr30kID", "pairID", "captionID", "sentence1", "sentence2", "gold_label", "annotator_labels")
SNLI_VE_LABELS = ("entailment", "neutral", "contradiction")

_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokenize(caption: str) -> list[str]:
    """Karpathy's ``tokens``: lower-case words, punctuation dropped."""
    return _TOKEN.findall(caption.lower())


def raw_caption(caption: str) -> str:
    """A caption as COCO annotators wrote it: capitalised, ending in a period."""
    return caption[:1].upper() + caption[1:] + "."


def read_karpathy(path: str | os.PathLike) -> list[dict]:
    """The ``images`` of a Karpathy ``dataset_coco.json``, every field and split checked."""
    path = Path(path)
    data = read_json(path)
    _require(path, None, data, ("images", "dataset"))
    for im in data["images"]:
        rec = f"cocoid {im.get('cocoid') if isinstance(im, dict) else None}"
        _require(path, rec, im, KARPATHY_IMAGE_FIELDS)
        if im["split"] not in KARPATHY_SPLITS:
            raise DataFormatError(path, rec, "split", f"{im['split']!r} is not one of {KARPATHY_SPLITS}")
        for s in im["sentences"]:
            _require(path, rec, s, KARPATHY_SENTENCE_FIELDS, " in sentences")
            if not isinstance(s["tokens"], list) or not s["tokens"]:
                raise DataFormatError(path, rec, "tokens", "must be a non-empty list of words")
    return data["images"]


def read_coco_captions(path: str | os.PathLike) -> tuple[dict[int, dict], dict[int, list[str]]]:
    """(image id -> image record, image id -> reference captions) of a COCO captions file."""
    path = Path(path)
    data = read_json(path)
    _require(path, None, data, COCO_TOP)
    images = {}
    for im in data["images"]:
        _require(path, f"image {im.get('id') if isinstance(im, dict) else None}", im, COCO_IMAGE_FIELDS)
        images[im["id"]] = im
    refs: dict[int, list[str]] = {i: [] for i in images}
    for a in data["annotations"]:
        rec = f"annotation {a.get('id') if isinstance(a, dict) else None}"
        _require(path, rec, a, COCO_ANNOTATION_FIELDS)
        if a["image_id"] not in images:
            raise DataFormatError(path, rec, "image_id", f"{a['image_id']} is not in images")
        refs[a["image_id"]].append(a["caption"])
    return images, refs


def read_lxmert(path: str | os.PathLike) -> list[dict]:
    """An LXMERT pre-training file; every ``labelf`` source has one label dict per sentence of that source."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data, list):
        raise DataFormatError(path, None, None, "must be a JSON list of images")
    for i, d in enumerate(data):
        rec = f"img_id {d.get('img_id') if isinstance(d, dict) else i}"
        _require(path, rec, d, LXMERT_FIELDS)
        for src, labels in d["labelf"].items():
            if len(labels) != len(d["sentf"].get(src, ())):
                raise DataFormatError(path, rec, f"labelf.{src}", f"has {len(labels)} label dicts for "
                                      f"{len(d['sentf'].get(src, ()))} sentences")
            for lab in labels:
                if not all(isinstance(v, (int, float)) and 0 <= v <= 1 for v in lab.values()):
                    raise DataFormatError(path, rec, f"labelf.{src}", f"scores must lie in [0, 1], got {lab}")
    return data


def read_snli_ve(path: str | os.PathLike) -> list[dict]:
    """The pairs of an SNLI-VE jsonl file, fields and gold labels checked."""
    path = Path(path)
    out = []
    for n, rec in iter_jsonl(path):
        _require(path, f"line {n}", rec, SNLI_VE_FIELDS)
        if rec["gold_label"] not in SNLI_VE_LABELS:
            raise DataFormatError(path, f"line {n}", "gold_label", f"{rec['gold_label']!r} is not one of {SNLI_VE_LABELS}")
        out.append(rec)
    return out
