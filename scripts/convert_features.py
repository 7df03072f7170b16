"""Convert a feature store between the R2R TSV format and our memory-mapped ``.feats`` format.

Example::

    python scripts/convert_features.py CLIP-ResNet-50x4-views.tsv data/features/clip_r50x4.feats
    python scripts/convert_features.py data/features/clip_r50x4.feats clip_r50x4.tsv

Every record is validated on the way (size, base64, NaN, duplicates); the output is written
atomically. A released TSV does not say which encoder made it; ``--encoder NAME`` records it
(with the encoder's released weights tag, or ``--weights-tag``) so that training and evaluation
can check it::

    python scripts/convert_features.py CLIP-ResNet-50x4-views.tsv data/features/clip_r50x4.feats --encoder clip_r50x4
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from features.provenance import record_of_spec
from features.store import convert_feature_store, open_feature_store
from vln.cli import script_parser
from vln.errors import VLNError

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    p = script_parser(__doc__)
    p.add_argument("src", help="input .tsv file or .feats directory")
    p.add_argument("dst", help="output .tsv file or .feats directory")
    p.add_argument("--dtype", default="float32", choices=("float32", "float16"), help="storage dtype of a .feats output")
    p.add_argument("--encoder", default=None,
                   help="record that SRC was made by this registered encoder (for a store that does not say)")
    p.add_argument("--weights-tag", default=None, help="with --encoder: its weights (default: the encoder's released tag)")
    return p


def main(argv=None) -> dict:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        record = record_of_spec(args.encoder, args.weights_tag) if args.encoder else None
        out = convert_feature_store(args.src, args.dst, dtype=np.dtype(args.dtype), record=record)
        with open_feature_store(out) as store:
            summary = {"path": str(out), "viewpoints": len(store), "dim": store.dim,
                       "random_weights": store.random_weights, "provenance": store.provenance}
    except (VLNError, ValueError, KeyError, FileNotFoundError) as e:
        if argv is not None:
            raise
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
