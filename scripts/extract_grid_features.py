"""Extract CLIP / ImageNet grid features of whole images into a sharded image grid store.

Examples::

    python scripts/extract_grid_features.py --encoder clip_r50x4 --preset vqa \\
        --images data/coco/train2014 --out data/coco/features/clip_r50x4_vqa.grids --dtype fp16
    torchrun --nproc-per-node 8 scripts/extract_grid_features.py --encoder clip_r50x4 \\
        --preset caption --image-list karpathy_images.txt --out caption.grids

Presets (``features.grid_presets``): ``vqa`` (short side 600, long side <= 1000; ``--resize
fixed`` gives the released code's 600 x 1000), ``caption`` (448 x 448 + pooled vector),
``pretrain`` (384 / 640, zero-padded to 384 x 640, validity mask) and ``custom`` (``--size HxW``
or ``--short-side S [--max-long-side L] [--pad-to HxW]``). An interrupted run resumes (images
already committed are skipped; ``--no-resume`` restarts). Under torchrun each rank writes its own
shards and the last one to finish merges them; no collectives are used.
"""
from __future__ import annotations

import argparse
import json
import logging

from features.grid_presets import PRESETS, RESIZE_MODES, make_preset, parse_size
from features.registry import ENCODERS
from vln.errors import VLNError, run_script

#: Expected input errors: reported as one ``error: ...`` line (no traceback) by ``run_script``.
ERRORS = (VLNError, FileNotFoundError, ValueError)
DTYPES = {"fp16": "float16", "float16": "float16", "fp32": "float32", "float32": "float32"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--encoder", required=True, choices=[n for n in ENCODERS.names() if ENCODERS.get(n).needs_pixels],
                   help="registered pixel encoder")
    p.add_argument("--preset", default="vqa", choices=PRESETS.names() + ["custom"], help="input sizing")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--images", help="folder of images (recursive; id = file stem)")
    src.add_argument("--image-list", help="text file: one 'PATH' or 'IMAGE_ID PATH' per line")
    p.add_argument("--out", required=True, help="output store directory (<name>.grids)")
    p.add_argument("--resize", choices=RESIZE_MODES, default=None,
                   help="'fixed' turns vqa into 600x1000 (the released code), pretrain into 384x640")
    p.add_argument("--size", type=parse_size, default=None, help="custom fixed input HxW (with --preset custom)")
    p.add_argument("--short-side", type=int, default=None, help="custom keep-aspect shorter side (pixels)")
    p.add_argument("--max-long-side", type=int, default=None, help="custom cap on the longer side (pixels)")
    p.add_argument("--pad-to", type=parse_size, default=None, help="custom zero-padded canvas HxW (landscape)")
    p.add_argument("--pooled", action=argparse.BooleanOptionalAction, default=None,
                   help="store the pooled vector too (default: the preset's choice; caption: yes)")
    p.add_argument("--dtype", default="fp16", choices=sorted(DTYPES), help="storage dtype")
    p.add_argument("--weights", default=None, help="checkpoint PATH, pretrained tag, or 'random' (tests only)")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds '--weights random' so that every rank builds the same random encoder")
    p.add_argument("--device", default=None, help="torch device (default: cuda:LOCAL_RANK if available, else cpu)")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass (of one input size)")
    p.add_argument("--workers", type=int, default=4, help="DataLoader decoding processes (0: in the main process)")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "none"), help="autocast dtype on GPU")
    p.add_argument("--shard-gb", type=float, default=1.0, help="shard file size in GB")
    p.add_argument("--limit", type=int, default=None, help="only the first N images (smoke tests)")
    p.add_argument("--no-resume", action="store_true", help="discard a partial run instead of resuming it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    import torch

    from features.encoders import get_encoder
    from features.grid_extract import dist_env, extract_grids, list_images

    preset = make_preset(args.preset, resize=args.resize, size=args.size, short_side=args.short_side,
                         max_long_side=args.max_long_side, pad_to=args.pad_to, pooled=args.pooled)
    rank, world_size, local_rank = dist_env()
    device = args.device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    items = list_images(args.images, args.image_list)[:args.limit]
    torch.manual_seed(args.seed)
    encoder = get_encoder(args.encoder, weights=args.weights, device=device)
    if encoder.random_weights and rank == 0:
        logging.getLogger(__name__).warning("extracting with RANDOM weights: %s records random: true", args.out)
    stats = extract_grids(encoder, items, args.out, preset, dtype=DTYPES[args.dtype], batch_size=args.batch_size,
                          workers=args.workers, amp=args.amp, resume=not args.no_resume,
                          progress=not args.no_progress, rank=rank, world_size=world_size,
                          shard_bytes=int(args.shard_gb * (1 << 30)))
    print(json.dumps(stats))
    return stats


if __name__ == "__main__":
    run_script(main, errors=ERRORS)
