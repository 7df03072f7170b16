"""Extract 36 x D panoramic features of every viewpoint with a registered visual encoder.

Example::

    python scripts/extract_features.py --encoder clip_r50x4 --scans-dir data/v1/scans \\
        --connectivity ../shared/data/connectivity --out data/features/clip_r50x4.feats

The output is a ``.feats`` directory (fast, memory-mapped) or an R2R ``.tsv`` file. An
interrupted run resumes: viewpoints already written are skipped (``--no-resume`` restarts).
Weights: a file named as the registry says (``RN50x4.pt``, ...) under ``$CLIPVIL_WEIGHTS_DIR``,
``--weights PATH`` for any local file (OpenAI's TorchScript ``.pt``, open_clip / Hugging Face
``.bin`` / ``.safetensors``, a snapshot folder or a hub cache), else the local download caches,
else the open_clip / torchvision download when online; ``--weights random`` for tests only.
The store records the encoder, the weights file's SHA-256 and whether the weights were random.
``--encoder`` also takes a spec file (``my_encoder.json``, ``EncoderSpec.to_dict()``).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from features.registry import ENCODERS
from vln.cli import script_parser
from vln.errors import VLNError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("--encoder", required=True,
                   help=f"registered encoder ({', '.join(ENCODERS.names())}) or an encoder spec .json file")
    p.add_argument("--scans-dir", required=True,
                   help="skybox root (<scan>/matterport_skybox_images/...); the world directory for annotation encoders")
    p.add_argument("--connectivity", required=True, help="folder of <scan>_connectivity.json files and scans.txt")
    p.add_argument("--out", required=True, help="output <name>.feats directory or <name>.tsv file")
    p.add_argument("--weights", default=None,
                   help="weights file or folder PATH, pretrained tag, or 'random' (tests only); "
                        "default: $CLIPVIL_WEIGHTS_DIR, then the local caches, then a download")
    p.add_argument("--scans", nargs="*", default=None, help="only these scans (default: all of scans.txt)")
    p.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    p.add_argument("--batch-viewpoints", type=int, default=8, help="viewpoints per forward pass (x 36 views)")
    p.add_argument("--workers", type=int, default=4, help="JPEG decoding threads")
    p.add_argument("--amp", default="auto", choices=("auto", "bf16", "fp16", "none"), help="autocast dtype on GPU")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="storage dtype of .feats")
    p.add_argument("--face-max-size", type=int, default=512,
                   help="downscale larger skybox faces to this size first (MatterSim's 512); 0 keeps them")
    p.add_argument("--limit", type=int, default=None, help="only the first N viewpoints, for smoke tests (default: all)")
    p.add_argument("--no-resume", action="store_true", help="discard a partial run instead of resuming it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from features.extract import run_extraction

    try:
        stats = run_extraction(
            args.encoder, args.scans_dir, args.connectivity, args.out, weights=args.weights, device=args.device,
            scans=args.scans, limit=args.limit, batch_viewpoints=args.batch_viewpoints, workers=args.workers,
            amp=args.amp, dtype=np.dtype(args.dtype), face_max_size=args.face_max_size or None,
            resume=not args.no_resume, progress=not args.no_progress,
        )
    except (VLNError, FileNotFoundError) as e:
        if argv is not None:
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(stats))
    return stats


if __name__ == "__main__":
    main()
