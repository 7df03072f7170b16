"""Feature stores: R2R TSV and .feats round trips, conversion, corrupt records, resumable writes."""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from features.store import convert_feature_store, default_store_path, open_feature_store, write_feature_store
from features.store_npy import FeatsWriter, NpyFeatureStore
from features.store_tsv import TsvFeatureStore, meta_path
from scripts.convert_features import main as convert_main
from vln.errors import DataFormatError

META = {"encoder": {"name": "clip_r50"}, "weights": "random", "random_weights": True,
        "image_w": 224, "image_h": 224, "vfov": 60.0}


def records(n=5, dim=8, seed=0):
    rng = np.random.default_rng(seed)
    return [(f"scan{i % 2}", f"vp{i:03d}", rng.standard_normal((36, dim)).astype(np.float32)) for i in range(n)]


def write_raw_tsv(path, rows):
    """rows: (scan, vp, features-field string); written the way EnvDrop's DictWriter does."""
    path.write_text("".join(f"{s}\t{v}\t640\t480\t60\t{f}\r\n" for s, v, f in rows))


def b64(arr):
    return base64.b64encode(np.asarray(arr, np.float32).tobytes()).decode()


@pytest.mark.parametrize("name", ["f.tsv", "f.feats"])
def test_round_trip(tmp_path, name):
    recs = records()
    write_feature_store(tmp_path / name, recs, META)
    with open_feature_store(tmp_path / name) as store:
        assert store.dim == 8 and len(store) == 5
        assert store.keys() == [(s, v) for s, v, _ in recs]
        assert ("scan0", "vp000") in store and ("scan0", "nope") not in store
        for s, v, a in recs:
            got = store.get(s, v)
            assert got.dtype == np.float32 and got.shape == (36, 8)
            np.testing.assert_array_equal(got, a)
        arr = store.as_array()
        assert arr.shape == (5, 36, 8)
        np.testing.assert_array_equal(arr[store.index[("scan1", "vp003")]], recs[3][2])
        assert store.random_weights is True and store.metadata["encoder"]["name"] == "clip_r50"
        with pytest.raises(KeyError, match="vp999"):
            store.get("scan0", "vp999")


def test_tsv_matches_envdrop_layout(tmp_path):
    recs = records(2)
    write_feature_store(tmp_path / "f.tsv", recs, META)
    line = (tmp_path / "f.tsv").read_bytes().split(b"\r\n")[0].decode()
    fields = line.split("\t")
    assert fields[:5] == ["scan0", "vp000", "224", "224", "60.0"]
    decoded = np.frombuffer(base64.b64decode(fields[5]), dtype=np.float32).reshape(36, 8)
    np.testing.assert_array_equal(decoded, recs[0][2])


def test_tsv_without_sidecar_reads_released_files(tmp_path):
    a = np.ones((36, 4), np.float32)
    write_raw_tsv(tmp_path / "r.tsv", [("s", "v1", b64(a)), ("s", "v2", b64(2 * a))])
    store = TsvFeatureStore(tmp_path / "r.tsv")
    assert store.random_weights is None and store.metadata["image_w"] == 640
    np.testing.assert_array_equal(store.get("s", "v2"), 2 * a)


def test_feats_float16_and_conversion_both_ways(tmp_path):
    recs = records(4, dim=16)
    write_feature_store(tmp_path / "a.tsv", recs, META)
    convert_feature_store(tmp_path / "a.tsv", tmp_path / "b.feats", dtype=np.float16)
    half = NpyFeatureStore(tmp_path / "b.feats")
    assert half.as_array().dtype == np.float16 and half.metadata["dtype"] == "float16"
    np.testing.assert_allclose(half.get("scan1", "vp001"), recs[1][2], rtol=1e-3, atol=1e-3)
    summary = convert_main([str(tmp_path / "b.feats"), str(tmp_path / "c.tsv")])
    assert summary.pop("provenance")["name"] == "clip_r50"  # rebuilt from the older encoder / random_weights fields
    assert summary == {"path": str(tmp_path / "c.tsv"), "viewpoints": 4, "dim": 16, "random_weights": True}
    assert json.loads(meta_path(tmp_path / "c.tsv").read_text())["random_weights"] is True


@pytest.mark.parametrize("field,problem", [
    (lambda a: b64(a)[:-8], "wrong size"),
    (lambda a: b64(a)[:-4] + "@@@=", "base64"),
    (lambda a: b64(np.full((36, 4), np.nan)), "NaN"),
])
def test_corrupt_tsv_record_is_named(tmp_path, field, problem):
    good = np.zeros((36, 4), np.float32)
    write_raw_tsv(tmp_path / "c.tsv", [("s", "v1", b64(good)), ("s", "bad", field(good))])
    with pytest.raises(DataFormatError, match=problem) as e:
        store = TsvFeatureStore(tmp_path / "c.tsv")
        store.get("s", "bad")
    assert "s_bad" in str(e.value) and "c.tsv" in str(e.value)


def test_short_record_among_others_fails_at_index_time(tmp_path):
    good = np.zeros((36, 4), np.float32)
    write_raw_tsv(tmp_path / "c.tsv", [("s", "v1", b64(good)), ("s", "v2", b64(np.zeros((36, 3))))])
    with pytest.raises(DataFormatError, match="s_v2.*wrong size"):
        TsvFeatureStore(tmp_path / "c.tsv")


def test_tsv_duplicate_and_missing_field(tmp_path):
    good = b64(np.zeros((36, 4), np.float32))
    write_raw_tsv(tmp_path / "d.tsv", [("s", "v1", good), ("s", "v1", good)])
    with pytest.raises(DataFormatError, match="s_v1.*duplicate"):
        TsvFeatureStore(tmp_path / "d.tsv")
    (tmp_path / "m.tsv").write_text("s\tv1\t640\t480\n")
    with pytest.raises(DataFormatError, match="line 1.*6 tab-separated fields"):
        TsvFeatureStore(tmp_path / "m.tsv")


def test_writer_rejects_nan_wrong_shape_and_duplicates(tmp_path):
    w = FeatsWriter(tmp_path / "x.feats", 4, META)
    with pytest.raises(DataFormatError, match="s_v.*NaN"):
        w.add("s", "v", np.full((36, 4), np.nan))
    with pytest.raises(DataFormatError, match=r"s_v.*\(36, 4\)"):
        w.add("s", "v", np.zeros((36, 5)))
    w.add("s", "v", np.zeros((36, 4)))
    with pytest.raises(DataFormatError, match="duplicate"):
        w.add("s", "v", np.zeros((36, 4)))


def test_feats_corrupt_index_is_named(tmp_path):
    write_feature_store(tmp_path / "a.feats", records(3), META)
    idx = tmp_path / "a.feats" / "index.json"
    keys = json.loads(idx.read_text())["keys"]
    idx.write_text(json.dumps({"keys": keys[:2]}))
    with pytest.raises(DataFormatError, match="lists 2 viewpoints but features.npy has 3 rows"):
        NpyFeatureStore(tmp_path / "a.feats")
    idx.write_text(json.dumps({"keys": [keys[0], keys[1], keys[0]]}))
    with pytest.raises(DataFormatError, match="scan0_vp000.*duplicate"):
        NpyFeatureStore(tmp_path / "a.feats")


def test_feats_nan_row_is_named(tmp_path):
    recs = records(3)
    recs[1][2][5, 2] = np.nan
    with pytest.raises(DataFormatError, match="scan1_vp001"):
        write_feature_store(tmp_path / "a.feats", recs, META)
    assert not (tmp_path / "a.feats").exists()  # nothing published


def test_writer_resumes_after_interruption(tmp_path):
    recs = records(6)
    w = FeatsWriter(tmp_path / "r.feats", 8, META, commit_every=2)
    for s, v, a in recs[:3]:
        w.add(s, v, a)
    del w  # crash: third row written but not committed
    assert not (tmp_path / "r.feats").exists()
    w = FeatsWriter(tmp_path / "r.feats", 8, META, commit_every=2)
    assert len(w) == 2 and (recs[1][0], recs[1][1]) in w and (recs[2][0], recs[2][1]) not in w
    for s, v, a in recs:
        if (s, v) not in w:
            w.add(s, v, a)
    w.finish()
    store = NpyFeatureStore(tmp_path / "r.feats")
    assert sorted(store.keys()) == sorted((s, v) for s, v, _ in recs)
    for s, v, a in recs:
        np.testing.assert_array_equal(store.get(s, v), a)
    assert not (tmp_path / "r.feats.partial").exists()


def test_writer_restarts_when_encoder_changes(tmp_path):
    w = FeatsWriter(tmp_path / "r.feats", 8, META, commit_every=1)
    w.add("s", "v", np.zeros((36, 8)))
    w.close()
    other = {**META, "encoder": {"name": "clip_vit_b32"}}
    w = FeatsWriter(tmp_path / "r.feats", 8, other, commit_every=1)
    assert len(w) == 0


def test_open_dispatch_and_default_path(tmp_path):
    with pytest.raises(ValueError, match="unknown feature store type"):
        open_feature_store(tmp_path / "x.h5")
    with pytest.raises(FileNotFoundError):
        open_feature_store(tmp_path / "x.tsv")
    assert default_store_path(tmp_path, "clip_r50x4") == tmp_path / "features" / "clip_r50x4.feats"
