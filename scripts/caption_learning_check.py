#!/usr/bin/env python
"""Does the captioner learn, and does self-critical training help? Three trainings per seed, one run.

See captioning/learning_check.py; unknown flags go to every training (scripts/train_caption.py).
"""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> dict:
    from captioning.learning_check import main as check_main

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return check_main(argv)


if __name__ == "__main__":
    from vln.errors import run_script

    run_script(main)
