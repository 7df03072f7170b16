"""A tiny synthetic V&L corpus (36 images of 96 x 128) built once per test session from the small world."""
from __future__ import annotations

import pytest

from synthetic_helpers import small_world  # noqa: F401 - fixture the corpus builds on


@pytest.fixture(scope="session")
def small_corpus(small_world, tmp_path_factory):  # noqa: F811
    """(world dir, corpus dir, summary) of a corpus of the 3-house small world, seed 3, ``tiny`` images."""
    from vlcorpus import make_vl_corpus

    world, _ = small_world
    out = tmp_path_factory.mktemp("vl") / "synthetic_vl"
    summary = make_vl_corpus(world, out, seed=3, image_size="tiny")
    return world, out, summary
