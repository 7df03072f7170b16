"""features.image_store / image_store_writer: sharded grid store, resume, ranks, bad records."""
from __future__ import annotations

import json

import numpy as np
import pytest

from features.image_store import GridRecord, ImageGridStore, open_image_store, pad_grids
from features.image_store_writer import ImageGridWriter, merge_image_store, write_image_store
from vln.errors import DataFormatError

ENC = {"name": "tiny", "architecture": "RN-tiny", "weights": "random", "weights_sha256": None, "random": True}
PRESET = {"name": "custom"}


def records(n=7, c=8, seed=0, pooled=None, mask=False):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        h, w = 2 + i % 3, 3 + i % 2
        out.append((f"img{i}", GridRecord(rng.standard_normal((h, w, c)).astype(np.float32),
                                          rng.standard_normal(pooled).astype(np.float32) if pooled else None,
                                          rng.random((h, w)) > 0.3 if mask else None)))
    return out


def test_round_trip_with_pooled_and_mask_across_shards(tmp_path):
    recs = records(pooled=5, mask=True)
    out = write_image_store(tmp_path / "a.grids", recs, channels=8, encoder=ENC, preset=PRESET, dtype="float32",
                            pooled_dim=5, has_mask=True, shard_bytes=300)
    with open_image_store(out, encoder="tiny") as store:
        assert len(store.shards) > 2 and len(store) == 7 and store.ids() == [i for i, _ in recs]
        for image_id, rec in recs:
            got = store.get_record(image_id)
            np.testing.assert_array_equal(got.grid, rec.grid)
            np.testing.assert_array_equal(got.pooled, rec.pooled)
            np.testing.assert_array_equal(got.mask, rec.mask)
        streamed = list(store.iter_records(prefetch_bytes=500))
        assert [i for i, _ in streamed] == store.ids()
        np.testing.assert_array_equal(streamed[3][1].grid, recs[3][1].grid)
        assert [i for i, _ in store.iter_records(["img5", "img1"])] == ["img1", "img5"]


def test_fp16_storage_and_int_ids(tmp_path):
    grid = np.random.default_rng(1).standard_normal((3, 4, 8)).astype(np.float32)
    out = write_image_store(tmp_path / "b.grids", [(42, grid)], channels=8, encoder=ENC, preset=PRESET)
    store = ImageGridStore(out)
    assert store.dtype == np.float16 and 42 in store and store.grid_shape(42) == (3, 4)
    np.testing.assert_allclose(store.get(42), grid, rtol=1e-3, atol=1e-3)
    assert store.get("42", dtype=None).dtype == np.float16
    assert (out / "shards").is_dir() and not out.with_name("b.grids.partial").exists()


def test_resume_redoes_only_uncommitted_images(tmp_path):
    recs = records(n=6)
    path = tmp_path / "c.grids"
    w = ImageGridWriter(path, channels=8, encoder=ENC, preset=PRESET, commit_every=2)
    for image_id, rec in recs[:5]:
        w.add(image_id, rec.grid)
    del w  # crash: img4 was written but never committed
    w = ImageGridWriter(path, channels=8, encoder=ENC, preset=PRESET, commit_every=2)
    assert len(w) == 4 and "img3" in w and "img4" not in w
    for image_id, rec in recs[4:]:
        w.add(image_id, rec.grid)
    w.finish()
    store = open_image_store(path)
    assert store.ids() == [i for i, _ in recs]
    np.testing.assert_allclose(store.get("img5"), recs[5][1].grid, atol=2e-3)
    # other settings discard the partial instead of mixing stores
    w = ImageGridWriter(tmp_path / "d.grids", channels=8, encoder=ENC, preset=PRESET, commit_every=1)
    w.add("x", recs[0][1].grid)
    w.close()
    w = ImageGridWriter(tmp_path / "d.grids", channels=8, encoder={**ENC, "name": "other"}, preset=PRESET)
    assert len(w) == 0


def test_two_ranks_merge_into_one_store(tmp_path):
    recs = records(n=9)
    path = tmp_path / "e.grids"
    writers = [ImageGridWriter(path, channels=8, encoder=ENC, preset=PRESET, rank=r, world_size=2) for r in range(2)]
    for n, (image_id, rec) in enumerate(recs):
        writers[n % 2].add(image_id, rec.grid)
    assert writers[1].finish() is None and not path.exists()
    assert writers[0].finish() == path
    store = open_image_store(path)
    assert sorted(store.ids()) == sorted(i for i, _ in recs) and store.meta["world_size"] == 2
    assert sorted(p.name for p in path.iterdir()) == ["index.json", "meta.json", "shards"]
    np.testing.assert_allclose(store.get("img7"), recs[7][1].grid, atol=2e-3)


def test_manual_merge_needs_every_rank(tmp_path):
    path = tmp_path / "f.grids"
    w = ImageGridWriter(path, channels=8, encoder=ENC, preset=PRESET, rank=0, world_size=2)
    w.add("a", np.zeros((1, 1, 8)))
    w.finish()
    with pytest.raises(DataFormatError, match=r"ranks \[1\] of 2"):
        merge_image_store(path, 2)


def test_bad_records_name_the_file_image_and_field(tmp_path):
    w = ImageGridWriter(tmp_path / "g.grids", channels=8, encoder=ENC, preset=PRESET, pooled_dim=4)
    with pytest.raises(DataFormatError, match=r"image a, field 'grid': must have shape \(H, W, 8\)"):
        w.add("a", np.zeros((2, 2, 7)))
    with pytest.raises(DataFormatError, match=r"image a, field 'grid': holds NaN"):
        w.add("a", np.full((2, 2, 8), np.nan), np.zeros(4))
    with pytest.raises(DataFormatError, match=r"image a, field 'pooled'"):
        w.add("a", np.zeros((2, 2, 8)), np.zeros(3))
    w.add("a", np.zeros((2, 2, 8)), np.zeros(4))
    with pytest.raises(DataFormatError, match=r"image a, field 'image_id': duplicate"):
        w.add("a", np.zeros((2, 2, 8)), np.zeros(4))


def test_corrupt_store_errors(tmp_path):
    recs = records(n=3)
    out = write_image_store(tmp_path / "h.grids", recs, channels=8, encoder=ENC, preset=PRESET, dtype="float32")
    store = open_image_store(out)
    with pytest.raises(KeyError, match="image nope is not in the index"):
        store.get("nope")
    with pytest.raises(DataFormatError, match=r"meta.json, field 'encoder.name'.*'tiny', not 'clip_r50'"):
        open_image_store(out, encoder="clip_r50")
    with pytest.raises(DataFormatError, match=r"field 'encoder.random'.*True, not False"):
        open_image_store(out, encoder={**ENC, "random": False})
    open_image_store(out, encoder={**ENC, "weights": "other.pt", "weights_sha256": "ab" * 32})  # reported only
    # NaN written into a record on disk
    e = store.entry("img1")
    shard = store.shards[e.shard]
    raw = bytearray(shard.read_bytes())
    raw[e.offset:e.offset + 4] = np.array([np.nan], np.float32).tobytes()
    shard.write_bytes(bytes(raw))
    with pytest.raises(DataFormatError, match=r"r00000-00000.bin, record image img1, field 'grid': holds NaN"):
        ImageGridStore(out).get("img1")
    with pytest.raises(DataFormatError, match="img1"):
        ImageGridStore(out).validate()
    # an index whose shape does not fit the shard (truncated file)
    idx = json.loads((out / "index.json").read_text())
    idx["images"][-1][3] = 50
    (out / "index.json").write_text(json.dumps(idx))
    with pytest.raises(DataFormatError, match=r"image img2, field 'offset'.*runs past the end"):
        ImageGridStore(out)


def test_pad_grids_masks_padding_and_own_masks():
    a = GridRecord(np.ones((2, 3, 4), np.float32))
    b = GridRecord(np.ones((3, 2, 4), np.float32), mask=np.array([[1, 0], [1, 1], [0, 0]], bool))
    x, m = pad_grids([a, b])
    assert x.shape == (2, 3, 3, 4) and m.shape == (2, 3, 3)
    assert m[0].sum() == 6 and m[1].sum() == 3 and x[0, 2].sum() == 0
