"""The tiny synthetic V&L corpus with its ``synthetic_semantic_grid`` store (for the VQA tests)."""
from __future__ import annotations

import pytest

from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures this one builds on


@pytest.fixture(scope="session")
def vqa_corpus(small_corpus):  # noqa: F811
    """(corpus dir, grid store path) of the small corpus, ``vqa`` preset."""
    from features.semantic_grid import ensure_semantic_grid_store

    _, corpus, _ = small_corpus
    return corpus, ensure_semantic_grid_store(corpus, "vqa")
