#!/usr/bin/env python
"""Overlay where CLIP looked for a text: Grad-CAM (ResNets) or attention x gradient relevance (ViTs), as PNG.

    python scripts/gradcam.py --encoder clip_r50 --image photo.jpg --text "a red sofa" --out sofa.png
    python scripts/gradcam.py --encoder clip_r50 --results runs/zeroshot/results_prompt.json \\
        --questions Q.json --images coco/val2014 --out-dir runs/zeroshot/gradcam --limit 50

The map is of the cosine similarity of the image and the text (last ResNet block, or every ViT
block's attention), on the image as CLIP sees it (shorter side resized, centre crop). With
``--results`` (official format, ``[{question_id, answer}]``) each entry's image is explained for
``question: Q answer: A`` (``--text-mode prompt``, the probe's text), the answer alone
(``no_prompt``) or the question; one ``<question_id>.png`` per entry and ``gradcam.json`` (texts,
similarities, maps) go to ``--out-dir``. Without ``--questions`` the questions are the synthetic
corpus's (``--data-dir``, ``--split``).
"""
from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vln.cli import script_parser  # noqa: E402
from vln.errors import VLNError  # noqa: E402

ERRORS = (VLNError, FileNotFoundError)
TEXT_MODES = ("prompt", "no_prompt", "question")


def build_parser():
    p = script_parser(__doc__)
    p.add_argument("--encoder", default="clip_r50", help="registered CLIP encoder or encoder spec file (.json)")
    p.add_argument("--weights", default=None, help="weights file or folder PATH, pretrained tag, or 'random' "
                   "(tests only); default: $CLIPVIL_WEIGHTS_DIR, then the local caches")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--image", help="one image file (with --text and --out)")
    src.add_argument("--results", help="results file [{question_id, answer}]: one overlay per entry")
    p.add_argument("--text", help="the text of --image (default: none)")
    p.add_argument("--out", help="PNG written for --image (default: none)")
    p.add_argument("--questions", help="official questions file of --results (default: the synthetic corpus's --split)")
    p.add_argument("--images", help="folder of the questions' images (default: the synthetic corpus's)")
    p.add_argument("--data-dir", help="synthetic corpus folder (default: the embedded one)")
    p.add_argument("--split", default="val2014", help="synthetic split of --results")
    p.add_argument("--out-dir", help="folder of the overlays of --results (default: none)")
    p.add_argument("--text-mode", default="prompt", choices=TEXT_MODES, help="text of a results entry")
    p.add_argument("--limit", type=int, default=None, help="only the first N entries of --results (default: all)")
    p.add_argument("--alpha", type=float, default=0.5, help="weight of the map over the image")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    return p


def entry_text(mode: str, question: str, answer: str) -> str:
    """The text a results entry is explained for (see ``--text-mode``)."""
    from vqa.zeroshot import PROMPT

    if mode == "prompt":
        return PROMPT.format(question=question, answer=answer)
    return answer if mode == "no_prompt" else question


def results_entries(args, parser) -> list[dict]:
    """``{question_id, image_id, path, text}`` of the first ``--limit`` results entries."""
    from vln.errors import DataFormatError
    from vln.io_utils import read_json
    from vqa.data import load_vqa2_files
    from vqa.sources import corpus_dir, load_split
    from vqa.zeroshot import image_files

    if not args.out_dir:
        parser.error("--results needs --out-dir")
    if args.questions:
        if not args.images:
            parser.error("--questions needs --images")
        examples, folder, source = load_vqa2_files(args.questions), Path(args.images), args.questions
    else:
        corpus = corpus_dir(args.data_dir)
        examples = load_split("synthetic", str(corpus), args.split)
        folder, source = Path(args.images) if args.images else corpus / "images" / args.split, str(corpus / "vqa")
    by_id = {ex.question_id: ex for ex in examples}
    results = read_json(args.results)
    if not isinstance(results, list):
        raise DataFormatError(args.results, None, None, "results must be a JSON list of {question_id, answer}")
    chosen = []
    for i, r in enumerate(results[:args.limit]):
        if not isinstance(r, dict) or not isinstance(r.get("answer"), str):
            raise DataFormatError(args.results, f"results[{i}]", "answer", "must be a string")
        if r.get("question_id") not in by_id:
            raise DataFormatError(args.results, f"results[{i}]", "question_id",
                                  f"{r.get('question_id')!r} is not a question of {source}")
        chosen.append((by_id[r["question_id"]], r["answer"]))
    paths = dict(image_files(folder, [ex for ex, _ in chosen], source))
    return [{"question_id": ex.question_id, "image_id": ex.image_id, "path": paths[ex.image_id],
             "text": entry_text(args.text_mode, ex.question, answer)} for ex, answer in chosen]


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from features.clip_text import clip_view
    from features.encoders import get_clip_model
    from features.gradcam import explain, overlay, save_png
    from features.provenance import record_of_encoder
    from vln.io_utils import atomic_write_json

    if args.image and not (args.text and args.out):
        parser.error("--image needs --text and --out")
    entries = results_entries(args, parser) if args.results else [{"path": Path(args.image), "text": args.text}]
    clip = get_clip_model(args.encoder, weights=args.weights, device=args.device)
    if clip.image.random_weights:
        logging.getLogger(__name__).warning("explaining a RANDOM-weight CLIP: the maps mean nothing")
    size = clip.spec.input_size[0]
    out = []
    for e in entries:
        pixels, seen = clip_view(e["path"], size)
        ex = explain(clip, pixels, e["text"])
        png = Path(args.out) if args.image else Path(args.out_dir) / f"{e['question_id']}.png"
        save_png(overlay(seen, ex.map, args.alpha), png)
        out.append({**{k: v for k, v in e.items() if k != "path"}, "image": str(e["path"]), "png": str(png),
                    "method": ex.method, "similarity": round(ex.similarity, 6),
                    "map": [[round(float(v), 8) for v in row] for row in ex.map.tolist()]})
    summary = {"encoder": record_of_encoder(clip.image), "entries": out}
    if args.results:
        atomic_write_json(Path(args.out_dir) / "gradcam.json", summary, indent=1)
    print(json.dumps({"encoder": summary["encoder"],
                      "entries": [{k: v for k, v in e.items() if k != "map"} for e in out]}, indent=1))
    return summary


if __name__ == "__main__":
    from vln.errors import run_script

    run_script(main, errors=ERRORS)
