#!/usr/bin/env python
"""Zero-shot VQA with CLIP: every candidate answer scored by image-text similarity, with and without the prompt.

    python scripts/zeroshot_vqa.py --encoder clip_r50x4 --questions Q.json --annotations A.json \\
        --images coco/val2014 --ans2label trainval_ans2label.json --out runs/zeroshot
    python scripts/zeroshot_vqa.py --encoder clip_r50x4 --weights random   # synthetic corpus (tests only)

Texts: ``question: [question] answer: [answer]`` (``prompt``) and the answer alone (``no_prompt``).
Prints ``{"prompt": {"overall", "perAnswerType", "perQuestionType"}, "no_prompt": {...}, ...}``
(official accuracy, percentages, 2 decimals; ``chance``: a uniformly drawn answer's expected
accuracy) and writes ``results_<mode>.json`` in the official results format under ``--out``.
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


def build_parser():
    p = script_parser(__doc__)
    p.add_argument("--encoder", default="clip_r50x4", help="registered CLIP encoder or encoder spec file (.json)")
    p.add_argument("--weights", default=None, help="weights file or folder PATH, pretrained tag, or 'random' "
                   "(tests only); default: $CLIPVIL_WEIGHTS_DIR, then the local caches")
    p.add_argument("--dataset", default="synthetic", choices=("synthetic", "files"),
                   help="'synthetic': the synthetic V&L corpus; 'files': --questions / --annotations / --images "
                        "(implied by --questions)")
    p.add_argument("--data-dir", help="synthetic corpus folder (default: the embedded one, built on first use)")
    p.add_argument("--split", default="val2014", help="synthetic split answered")
    p.add_argument("--questions", help="official questions file (default: none; the synthetic corpus)")
    p.add_argument("--annotations", help="official annotations file of --questions (default: none: answers only)")
    p.add_argument("--images", help="folder of the questions' images, COCO names or image ids as file names "
                                    "(default: none; the synthetic corpus's)")
    p.add_argument("--ans2label", help="answer vocabulary file {answer: label} (default: built from the training answers)")
    p.add_argument("--train-annotations", help="official training annotations the vocabulary is built from "
                                               "(default: none; the synthetic corpus's train2014)")
    p.add_argument("--min-answer-count", type=int, default=9, help="answers seen this often in training form the vocabulary")
    p.add_argument("--modes", nargs="+", default=["prompt", "no_prompt"], choices=("prompt", "no_prompt"),
                   help="texts scored")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions (default: all)")
    p.add_argument("--out", help="folder for results_<mode>.json and scores.json (default: not written)")
    p.add_argument("--batch-size", type=int, default=256, help="texts per text-tower batch")
    p.add_argument("--image-batch-size", type=int, default=32, help="images per image-tower batch")
    p.add_argument("--workers", type=int, default=2, help="image decoding processes (0: in the main process)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "none"),
                   help="text-tower autocast ('auto': bf16 on a GPU, none on the CPU)")
    return p


def load_questions(args, parser):
    """(examples, answers, images) of the arguments."""
    from vln.errors import DataFormatError
    from vqa.answers import AnswerVocab
    from vqa.data import load_vqa2_files, train_answers
    from vqa.evaluate import read_annotation_file
    from vqa.sources import SettingError, corpus_dir, load_split
    from vqa.zeroshot import image_files

    if args.questions or args.dataset == "files":
        if not (args.questions and args.images):
            parser.error("--dataset files needs --questions and --images (and --annotations to be scored)")
        examples = load_vqa2_files(args.questions, args.annotations)
        folder, source = Path(args.images), args.questions
        train = None
        if args.train_annotations:
            train = []
            for a in read_annotation_file(args.train_annotations):
                if not isinstance(a.get("multiple_choice_answer"), str):
                    raise DataFormatError(args.train_annotations, f"question_id {a['question_id']}",
                                          "multiple_choice_answer", "is missing")
                train.append(a["multiple_choice_answer"])
        elif not args.ans2label:
            parser.error("give --ans2label FILE or --train-annotations FILE (the candidate answers)")
    else:
        corpus = corpus_dir(args.data_dir)
        examples = load_split("synthetic", str(corpus), args.split)
        folder, source = corpus / "images" / args.split, str(corpus / "vqa")
        train = None if args.ans2label else train_answers(load_split("synthetic", str(corpus), "train2014"))
    examples = examples[:args.limit]
    if args.ans2label:
        answers = AnswerVocab.from_file(args.ans2label)
    else:
        try:
            answers = AnswerVocab.from_counts(train, args.min_answer_count)
        except ValueError as e:
            raise SettingError(f"{e} (--min-answer-count {args.min_answer_count})") from None
    return examples, answers.answers, image_files(folder, examples, source)


def main(argv=None) -> dict:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from features.encoders import get_clip_model
    from features.provenance import record_of_encoder
    from vln.io_utils import atomic_write_json
    from vqa.zeroshot import PROMPT, uniform_chance, zero_shot_vqa

    examples, answers, images = load_questions(args, parser)
    clip = get_clip_model(args.encoder, weights=args.weights, device=args.device)
    if clip.image.random_weights:
        logging.getLogger(__name__).warning("zero-shot probe with RANDOM weights: the scores are chance level")
    amp = torch.bfloat16 if args.amp == "bf16" or (args.amp == "auto" and clip.device.type == "cuda") else None
    results, scores = zero_shot_vqa(clip, examples, answers, images, args.modes, args.batch_size,
                                    args.image_batch_size, args.workers, amp)
    summary = {mode: scores[mode] for mode in args.modes}
    summary.update({"encoder": record_of_encoder(clip.image), "prompt_template": PROMPT, "questions": len(examples),
                    "images": len(images), "answers": len(answers), "texts_encoded": scores["texts_encoded"]})
    if any(ex.answers for ex in examples):
        summary["chance"] = uniform_chance(examples, answers)
    if args.out:
        out = Path(args.out)
        for mode in args.modes:
            atomic_write_json(out / f"results_{mode}.json", results[mode])
        atomic_write_json(out / "scores.json", summary, indent=1)
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    from vln.errors import run_script

    run_script(main, errors=ERRORS)
