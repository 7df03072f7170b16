"""Convert image grid features between our sharded store and the layouts already in use.

Examples::

    # grid-feats-vqa / Pythia folder of <id>.npy (1 x H x W x C) -> our fp16 store
    python scripts/convert_grid_features.py feats/trainval2014 coco_r50x4.grids --encoder clip_r50x4
    # our store -> ImageCaptioning.pytorch (--input_att_dir coco_att --input_fc_dir coco_fc)
    python scripts/convert_grid_features.py coco_r50x4.grids data/coco_att --to npz
    python scripts/convert_grid_features.py coco_r50x4.grids data/coco.lmdb   # needs clipvil[lmdb]

Formats: grids (ours), npy, npz (+ pooled <name>_fc/<id>.npy), lmdb; detected from the paths
unless --from / --to are given. Output is written beside and renamed in (atomic).
"""
from __future__ import annotations

import argparse
import json

from features.grid_convert import FORMATS, convert_grids
from vln.errors import VLNError, run_script


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("src", help="input store / folder / LMDB")
    p.add_argument("dst", help="output store / folder / LMDB")
    p.add_argument("--from", dest="src_format", choices=FORMATS, default=None, help="input layout (default: detect)")
    p.add_argument("--to", dest="dst_format", choices=FORMATS, default=None, help="output layout (default: from name)")
    p.add_argument("--encoder", default=None, help="encoder name to record when the input carries no metadata")
    p.add_argument("--dtype", default="float16", choices=("float16", "float32"), help="dtype of a grids output")
    p.add_argument("--fc-dir", default=None, help="pooled vectors of an npy/npz input (<id>.npy)")
    p.add_argument("--dst-fc-dir", default=None, help="where pooled vectors of an npy/npz output go (default <dst>_fc)")
    return p


def main(argv=None) -> str:
    args = build_parser().parse_args(argv)
    out = convert_grids(args.src, args.dst, src_format=args.src_format, dst_format=args.dst_format,
                        encoder=args.encoder, dtype=args.dtype, fc_dir=args.fc_dir, dst_fc_dir=args.dst_fc_dir)
    print(json.dumps({"written": str(out)}))
    return str(out)


if __name__ == "__main__":
    run_script(main, errors=(VLNError, FileNotFoundError, KeyError, ValueError))
