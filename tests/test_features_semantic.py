"""synthetic_semantic: an annotation encoder extracted straight from the world's view semantics."""
from __future__ import annotations

import numpy as np

from features.encoders import get_encoder
from features.extract import extract_features, list_viewpoints
from features.semantic import class_embedding
from features.store import open_feature_store
from graph_builders import TINY_SCAN
from vln.io_utils import atomic_write_json
from vln.synthetic.semantics import CLASSES, N_VIEWS, write_scan_semantics


def test_class_embedding_depends_on_name_not_order():
    a = class_embedding(["room:kitchen", "object:sofa"], 16)
    b = class_embedding(["object:sofa", "room:kitchen"], 16)
    np.testing.assert_array_equal(a[0], b[1])
    assert not np.allclose(a[0], a[1])


def test_extract_semantic_features_without_pixels(tmp_path, tiny_connectivity):
    vps = list_viewpoints(tiny_connectivity)
    ids = [v for _, v, _ in vps]
    rng = np.random.default_rng(0)
    fractions = rng.random((len(ids), N_VIEWS, len(CLASSES))).astype(np.float32)
    fractions[2, 5] = 0.0  # a view that sees no annotated class
    write_scan_semantics(tmp_path, TINY_SCAN, ids, fractions)
    atomic_write_json(tmp_path / "semantics" / "classes.json", list(CLASSES))  # as generate_world does
    enc = get_encoder("synthetic_semantic")
    stats = extract_features(enc, vps, tmp_path, tmp_path / "sem.feats", progress=False)
    assert stats["views"] == len(ids) * 36
    store = open_feature_store(tmp_path / "sem.feats")
    assert store.dim == 512 and store.random_weights is False
    emb = class_embedding(list(CLASSES), 512, seed=0)
    want = fractions[1] @ emb
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(store.get(TINY_SCAN, ids[1]), want, rtol=1e-5, atol=1e-6)
    assert (store.get(TINY_SCAN, ids[2])[5] == 0).all()
