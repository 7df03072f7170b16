#!/usr/bin/env python
"""Fine-tune a pre-trained CLIP-ViLp on VQA, GQA or SNLI-VE, scored with each task's official metric.

Synthetic corpus:  python scripts/finetune.py --task vqa --init runs/pt/checkpoint.pt --out runs/ft_vqa
Real data:         python scripts/finetune.py --task snli_ve --init RUN/checkpoint.pt --data-dir snli_ve/ \
                       --shards flickr30k_384x640.shards --out RUN_VE
Table 8 control:   python scripts/finetune.py --task vqa --init RUN/checkpoint.pt --from-scratch --out RUN_SCRATCH
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretraining.finetune import main  # noqa: E402

if __name__ == "__main__":
    from vln.errors import run_script

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_script(main)
