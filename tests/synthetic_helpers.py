"""A tiny synthetic world shared by the tests/test_synthetic_*.py files (built once per session)."""
from __future__ import annotations

import re

import pytest

from vln.synthetic.languages import OBJECT_WORDS, ROOM_WORDS

SMALL_PATHS = {"train": 8, "val_seen": 2, "val_unseen": 6, "test": 4}


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A 3-house world (1 train, 1 val_unseen, 1 test house) with 64 px faces, seed 7."""
    from vln.synthetic import generate_world

    out = tmp_path_factory.mktemp("synthetic") / "world"
    summary = generate_world(out, houses=3, seed=7, paths_per_house=SMALL_PATHS)
    return out, summary


def english_mentions(text: str) -> tuple[list[str], list[str]]:
    """(object types, room types) named in an English instruction, longest names first."""
    def find(words):
        names = sorted(words, key=len, reverse=True)
        pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b")
        return pattern.findall(text.lower())
    return find(OBJECT_WORDS["en"]), find(ROOM_WORDS["en"])


def small_world_with_features(root, seed: int, train_paths: int, val_unseen_paths: int):
    """A 2-house synthetic world (16 px faces) with its ``synthetic_semantic`` features extracted."""
    from features.extract import run_extraction
    from vln.synthetic import generate_world

    generate_world(root, houses=2, seed=seed, face_size=16,
                   paths_per_house={"train": train_paths, "val_seen": 1, "val_unseen": val_unseen_paths, "test": 1})
    run_extraction("synthetic_semantic", root, root / "connectivity", root / "features" / "synthetic_semantic.feats",
                   progress=False)
    return root
