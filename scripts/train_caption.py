"""Train the captioner: cross-entropy with the Noam schedule, then SCST from a given epoch.

Settings: captioning.train.CaptionConfig (paper defaults); an existing --out folder resumes.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None) -> dict:
    import logging

    from captioning.train import main as train_main

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    return train_main(argv)


if __name__ == "__main__":
    from vln.errors import run_script

    run_script(main)
