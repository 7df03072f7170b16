"""Shared fixtures: a hand-made connectivity directory and the optional real data in ../shared."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from graph_builders import TINY_EDGES, TINY_POSITIONS, TINY_SCAN, write_graph

SHARED_DATA = Path(os.environ.get("CLIPVIL_SHARED_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()


@pytest.fixture
def tiny_connectivity(tmp_path) -> Path:
    """A connectivity directory holding the 6-viewpoint test house (scan ``tinyScan0001``)."""
    d = tmp_path / "connectivity"
    write_graph(d, TINY_SCAN, TINY_POSITIONS, TINY_EDGES, excluded={"F"})
    return d


@pytest.fixture(scope="session")
def real_data() -> Path:
    """``../shared/data`` (real R2R splits and the 90 Matterport3D graphs); skips when absent."""
    if not (SHARED_DATA / "connectivity" / "scans.txt").exists():
        pytest.skip(f"real Matterport3D data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_clip_rn(tmp_path_factory) -> dict:
    """A small random CLIP (ModifiedResNet) in every weights format, once per session: paths
    ``spec`` (``--encoder``), ``openai`` (TorchScript ``.pt``), ``bin``, ``safetensors``
    (:func:`clip_archives.write_tiny_clip`)."""
    from clip_archives import write_tiny_clip

    return write_tiny_clip(tmp_path_factory.mktemp("tiny_clip"), kind="rn")
