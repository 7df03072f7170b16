#!/usr/bin/env python
"""Train MCAN or Pythia for VQA on image grid features (VQA v2, GQA or the synthetic corpus)."""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqa.train import main  # noqa: E402

if __name__ == "__main__":
    from vln.errors import run_script

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_script(main)
