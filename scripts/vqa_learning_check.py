#!/usr/bin/env python
"""Train a VQA model with real, zeroed and shuffled images in one run and print the held-out accuracies."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vqa.learning_check import main  # noqa: E402

if __name__ == "__main__":
    from vln.errors import run_script

    run_script(main)
