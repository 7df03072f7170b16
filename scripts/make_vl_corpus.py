#!/usr/bin/env python
"""Write the synthetic V&L corpus (images + VQA v2, GQA, Karpathy/COCO captions, LXMERT, SNLI-VE) of a world.

    python scripts/make_vl_corpus.py --world data/synthetic --out data/synthetic_vl --seed 0

Splits follow the world's houses (train / val_unseen / test houses -> train / val / test), every
answer and caption is true of its image, and equal seeds give byte-identical files. On the
default world (60 houses) it writes 720 images of 240 x 320 with about 3,600 questions.
"""
from __future__ import annotations

import argparse
import json
import logging
import time

from features.grid_presets import PRESETS
from features.semantic_grid import write_semantic_grid_store
from vln.errors import VLNError, run_script
from vlcorpus.build import DEFAULT_HEADINGS, DEFAULT_IMAGE_SIZE, DEFAULT_VIEWPOINTS_PER_HOUSE, IMAGE_SIZES, make_vl_corpus, parse_image_size
from vlcorpus.ensure import default_corpus_dir


def _image_size(value: str) -> tuple[int, int]:
    try:
        return parse_image_size(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[1], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--world", default=None, help="synthetic world folder (default: $CLIPVIL_DATA_DIR or <repo>/data/synthetic)")
    p.add_argument("--out", default=None, help="corpus folder (default: $CLIPVIL_VL_DIR or synthetic_vl beside the world)")
    p.add_argument("--seed", type=int, default=0, help="seed of the views, questions, annotators and captions")
    p.add_argument("--image-size", type=_image_size, default=DEFAULT_IMAGE_SIZE,
                   help=f"image size: HxW or one of {', '.join(f'{k} ({h}x{w})' for k, (h, w) in IMAGE_SIZES.items())}")
    p.add_argument("--face-size", type=int, default=None, help="skybox resolution the views are sampled from "
                   "(default: about 0.55 x the image height)")
    p.add_argument("--viewpoints-per-house", type=int, default=DEFAULT_VIEWPOINTS_PER_HOUSE, help="viewpoints per house")
    p.add_argument("--headings", type=int, default=DEFAULT_HEADINGS, help="views per viewpoint, evenly spaced in heading")
    p.add_argument("--grids", nargs="*", default=[], metavar="PRESET", choices=sorted(PRESETS.names()),
                   help="also write the synthetic_semantic_grid store of these grid presets (vqa caption pretrain) "
                        "to <out>/features/synthetic_semantic_grid.<preset>.grids")
    p.add_argument("--overwrite", action="store_true", help="replace a corpus already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from vln.synthetic import default_data_dir

    world = args.world if args.world is not None else default_data_dir()
    out = args.out if args.out is not None else default_corpus_dir(world)
    summary = make_vl_corpus(world, out, seed=args.seed, image_size=args.image_size, face_size=args.face_size,
                             viewpoints_per_house=args.viewpoints_per_house, headings=args.headings,
                             overwrite=args.overwrite, progress=not args.quiet)
    for preset in args.grids:
        t0 = time.perf_counter()
        path = write_semantic_grid_store(out, preset)
        summary.setdefault("grids", {})[preset] = {"path": str(path), "seconds": round(time.perf_counter() - t0, 2)}
    print(json.dumps({k: v for k, v in summary.items() if k != "splits"}, indent=1))
    return summary


if __name__ == "__main__":
    run_script(main, errors=(VLNError, FileNotFoundError, FileExistsError))
