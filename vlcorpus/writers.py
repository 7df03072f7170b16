"""Write a corpus's records in every official format (called by :func:`vlcorpus.build.make_vl_corpus`)."""
from __future__ import annotations

import json
from pathlib import Path

from vln.io_utils import atomic_write_json, atomic_write_text

from .text_formats import COCO_CAPTIONS_FILE, KARPATHY_FILE, SNLI_VE_FILE, raw_caption, tokenize
from .vqa_format import GQA_FILE, gqa_semantic_str, vqa_files
from .words import NUMBER_WORDS

IMAGE_LIST = "image_list.txt"


def normalize_answer(answer: str) -> str:
    """Light answer normalisation for soft labels: lower case, stripped, number words as digits."""
    a = answer.strip().lower()
    return str(NUMBER_WORDS.index(a)) if a in NUMBER_WORDS else a


def soft_scores(answers: list[dict]) -> dict[str, float]:
    """VQA soft score of each distinct answer given by k of the annotators: min(1, 0.3 k) (1 -> 0.3 ... >= 4 -> 1)."""
    counts: dict[str, int] = {}
    for a in answers:
        key = normalize_answer(a["answer"])
        counts[key] = counts.get(key, 0) + 1
    return {k: (1.0 if n >= 4 else round(0.3 * n, 1)) for k, n in sorted(counts.items())}


def question_id(image_id: int, k: int) -> int:
    """VQA's numbering: ``image_id * 1000 + k``."""
    return image_id * 1000 + k


def scene_graph(rec) -> dict:
    """The ground truth of one view: camera, room and every segment it shows with its pixel area."""
    segs = {s.label: s for s in rec.segments}
    return {"file_name": rec.file_name, "scan": rec.scan, "viewpoint": rec.viewpoint, "heading": rec.heading,
            "elevation": rec.elevation, "height": rec.height, "width": rec.width, "room": rec.facts.room,
            "room_type": rec.facts.room_type,
            "segments": [dict(segs[label].to_json(), pixels=n) for label, n in sorted(rec.areas.items()) if label]}


def write_all(out: Path, records: dict[str, list]) -> dict:
    """Write every format for ``records`` (split -> ImageRecords) under ``out``; returns counts per split."""
    from .build import SPLITS

    counts = {}
    karpathy, sentid = [], 0
    for split, recs in records.items():
        names = SPLITS[split]
        folder = names["folder"]
        atomic_write_json(out / "scene_graphs" / f"{folder}.json", {str(r.image_id): scene_graph(r) for r in recs})
        vq, va, gqa, lx, ve, coco_im, coco_ann = [], [], {}, [], [], [], []
        for r in recs:
            sentf_vqa, labelf_vqa = [], []
            for k, (q, answers) in enumerate(r.questions):
                qid = question_id(r.image_id, k)
                vq.append({"image_id": r.image_id, "question": q.text, "question_id": qid})
                va.append({"question_id": qid, "image_id": r.image_id, "question_type": q.question_type,
                           "answer_type": q.answer_type, "multiple_choice_answer": q.answer, "answers": answers})
                sentf_vqa.append(q.text)
                labelf_vqa.append(soft_scores(answers))
                if q.answer_type != "number":  # GQA has no counting questions
                    gqa[str(qid)] = {
                        "semantic": [{"operation": op, "argument": arg, "dependencies": list(deps)}
                                     for op, arg, deps in q.program],
                        "entailed": [], "equivalent": [str(qid)], "question": q.text, "imageId": str(r.image_id),
                        "isBalanced": True, "groups": {"global": None, "local": q.detailed}, "answer": q.answer,
                        "semanticStr": gqa_semantic_str(q.program),
                        "annotations": {"answer": {}, "question": {}, "fullAnswer": {}},
                        "types": {"structural": q.structural, "semantic": q.semantic, "detailed": q.detailed},
                        "fullAnswer": q.full_answer}
            sentences = []
            for c in r.captions:
                sentences.append({"tokens": tokenize(c), "raw": raw_caption(c), "imgid": r.image_id, "sentid": sentid})
                coco_ann.append({"image_id": r.image_id, "id": sentid, "caption": raw_caption(c)})
                sentid += 1
            karpathy.append({"filepath": folder, "sentids": [s["sentid"] for s in sentences], "filename": r.file_name,
                             "imgid": r.image_id, "split": split, "sentences": sentences, "cocoid": r.image_id})
            coco_im.append({"id": r.image_id, "file_name": r.file_name, "height": r.height, "width": r.width})
            lx.append({"img_id": r.stem, "sentf": {"mscoco": [raw_caption(c) for c in r.captions], "vqa": sentf_vqa},
                       "labelf": {"vqa": labelf_vqa}})
            for k, (hyp, label) in enumerate(r.hypotheses):
                ve.append({"Flikr30kID": r.file_name, "pairID": f"{r.file_name}#{k}{label[0]}",
                           "captionID": f"{r.file_name}#0", "sentence1": raw_caption(r.captions[0]),
                           "sentence2": raw_caption(hyp), "gold_label": label, "annotator_labels": [label]})
        for name, obj in vqa_files(folder, vq, va).items():
            atomic_write_json(out / "vqa" / name, obj)
        atomic_write_json(out / "gqa" / GQA_FILE.format(split=names["gqa"]), gqa)
        atomic_write_json(out / "captions" / COCO_CAPTIONS_FILE.format(folder=folder), {
            "info": {"description": "clipvil synthetic V&L corpus (COCO captions format)"}, "licenses": [],
            "type": "captions", "images": coco_im, "annotations": coco_ann})
        atomic_write_json(out / "lxmert" / f"{names['lxmert']}.json", lx)
        atomic_write_text(out / "snli_ve" / SNLI_VE_FILE.format(split=names["snli_ve"]),
                          "".join(json.dumps(v) + "\n" for v in ve))
        counts[split] = {"images": len(recs), "houses": len({r.scan for r in recs}), "questions": len(vq),
                         "gqa_questions": len(gqa), "captions": len(coco_ann), "snli_ve_pairs": len(ve)}
    atomic_write_json(out / "captions" / KARPATHY_FILE, {"images": karpathy, "dataset": "coco"})
    # ``IMAGE_ID PATH`` lines for scripts/extract_grid_features.py --image-list: stores keyed by str(cocoid)
    atomic_write_text(out / IMAGE_LIST, "".join(f"{r.image_id} images/{r.folder}/{r.file_name}\n"
                                                for recs in records.values() for r in recs))
    return counts
