#!/usr/bin/env python
"""Pre-train on the synthetic corpus on a CPU; compare held-out ITM / MLM accuracy with chance and the unigram baseline."""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pretraining.learning_check import main  # noqa: E402

if __name__ == "__main__":
    from vln.errors import run_script

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_script(main)
