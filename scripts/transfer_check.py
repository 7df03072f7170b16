#!/usr/bin/env python
"""Does pre-training transfer? Table 8's comparison on the synthetic corpus, on a CPU.

VQA fine-tuning on a fraction of the synthetic questions, pre-trained vs from scratch:

    python scripts/transfer_check.py --out runs/transfer --fraction 0.1 --seeds 0 1 2 [--init RUN/checkpoint.pt]

Without --init it first pre-trains (scripts/pretrain_learning_check.py's CPU budget). Prints the
official VQA accuracy on val2014 of both starts per seed, and the margins (pretraining/transfer.py).
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretraining.transfer import main  # noqa: E402

if __name__ == "__main__":
    from vln.errors import run_script

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_script(main)
