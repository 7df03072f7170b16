#!/usr/bin/env python
"""Does a VQA model use the image? Train it three times in one run and compare on held-out houses."""
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqa.learning_check import main  # noqa: E402

if __name__ == "__main__":
    from vln.errors import run_script

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    run_script(main)
