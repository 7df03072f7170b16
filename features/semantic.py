"""``synthetic_semantic``: an annotation encoder for the synthetic world (no pixels involved).

Each view's feature is a fixed embedding of its class-coverage vector: ``coverage (36, K) @
E (K, D)``, L2-normalised per view, where row ``E[c]`` is a standard normal vector seeded by the
class *name* (SHA-256 of ``seed:name``), so a class gets the same vector in every world whatever
the order of its class list. The coverage comes from
``vln.synthetic.semantics.read_view_semantics(world_dir)``.
"""
from __future__ import annotations

import hashlib
import logging
import os

import numpy as np

from .registry import EncoderSpec

logger = logging.getLogger(__name__)


def class_embedding(classes: list[str], dim: int, seed: int = 0) -> np.ndarray:
    """(K, dim) float32 seeded embedding, one row per class name."""
    rows = []
    for name in classes:
        digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        rows.append(rng.standard_normal(dim))
    return np.asarray(rows, dtype=np.float32).reshape(len(classes), dim)


class SemanticEncoder:
    """Maps per-view class coverage to (36, D) vectors; an "annotation encoder".

    Attributes:
        spec: the registry spec (``family == "annotation"``).
        weights: ``"seeded"`` (the embedding is fixed by the seed; nothing is learnt).
        random_weights: False: the features are the intended deterministic ones.
    """

    def __init__(self, spec: EncoderSpec, seed: int = 0):
        self.spec = spec
        self.seed = seed
        self.weights = f"seeded:{seed}"
        self.random_weights = False
        self._semantics = None
        self._world = None

    def open(self, world_dir: str | os.PathLike):
        """Read a world's annotations; returns the ``ViewSemantics`` (keys = viewpoints)."""
        try:
            from vln.synthetic.semantics import read_view_semantics
        except ImportError as e:  # the synthetic world package is optional
            from vln.errors import DependencyNotInstalled

            raise DependencyNotInstalled(
                f"encoder {self.spec.name!r} needs vln.synthetic.semantics (the synthetic-world package): {e}"
            ) from e
        self._semantics = read_view_semantics(world_dir)
        self._embedding = class_embedding(list(self._semantics.classes), self.spec.pooled_dim, self.seed)
        self._world = world_dir
        return self._semantics

    def keys(self) -> list[tuple[str, str]]:
        """(scan, viewpoint) pairs the annotations cover."""
        return list(self._semantics.keys())

    def encode_viewpoint(self, scan: str, viewpoint: str) -> np.ndarray:
        """(36, D) float32 features of one viewpoint (L2-normalised rows; all-zero coverage stays 0)."""
        if self._semantics is None:
            raise RuntimeError("call open(world_dir) before encode_viewpoint")
        cov = np.asarray(self._semantics.get(scan, viewpoint), dtype=np.float32)
        out = cov @ self._embedding
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        return (out / np.where(norm > 0, norm, 1.0)).astype(np.float32)


def build_semantic_encoder(spec: EncoderSpec, weights=None, cache_dir=None) -> SemanticEncoder:
    """Builder entry point of ``synthetic_semantic``; ``weights`` may be ``"seeded:<int>"``."""
    seed = int(spec.options.get("seed", 0))
    if weights not in (None, "random") and str(weights).startswith("seeded:"):
        seed = int(str(weights).split(":", 1)[1])
    return SemanticEncoder(spec, seed=seed)
