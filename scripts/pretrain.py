#!/usr/bin/env python
"""Pre-train CLIP-ViLp (MLM + ITM + QA over text tokens and CLIP ResNet grid cells, backbone trained).

One process:  python scripts/pretrain.py --encoder clip_r50 --data synthetic --out runs/pt --size small
GPUs:         torchrun --nproc-per-node 8 scripts/pretrain.py --encoder clip_r50x4 --data lxmert ...
Machines:     torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint HOST:29400 scripts/pretrain.py ...
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretraining.train import main  # noqa: E402

if __name__ == "__main__":
    from vln.errors import run_script

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_script(main)
