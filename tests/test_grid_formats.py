"""features.grid_formats / grid_convert: npy, npz(+fc), LMDB layouts, round trips, bad records."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from features.grid_convert import convert_grids, detect_format, open_grids
from features.grid_formats import NpyDirGrids, NpzDirGrids
from features.image_store import GridRecord, open_image_store
from features.image_store_writer import write_image_store
from vln.errors import DataFormatError

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from convert_grid_features import main as convert_main  # noqa: E402

ENC = {"name": "clip_r50x4", "architecture": "RN50x4-quickgelu", "weights": "openai", "weights_sha256": None,
       "random": False}


def make_store(path, n=4, pooled=True, mask=False, c=6):
    rng = np.random.default_rng(0)
    recs = []
    for i in range(n):
        h, w = 2 + i % 2, 3
        recs.append((str(100 + i), GridRecord(rng.standard_normal((h, w, c)).astype(np.float32),
                                              rng.standard_normal(5).astype(np.float32) if pooled else None,
                                              (rng.random((h, w)) > 0.5) if mask else None)))
    write_image_store(path, recs, channels=c, encoder=ENC, preset={"name": "caption"}, dtype="float32",
                      pooled_dim=5 if pooled else None, has_mask=mask)
    return dict(recs)


def assert_same(reader, recs):
    assert sorted(reader.ids()) == sorted(recs)
    for i, rec in recs.items():
        got = reader.get_record(i)
        np.testing.assert_allclose(got.grid, rec.grid, atol=2e-3)
        if rec.pooled is not None:
            np.testing.assert_allclose(got.pooled, rec.pooled, atol=2e-3)
        if rec.mask is not None:
            np.testing.assert_array_equal(got.mask, rec.mask)


def test_npy_layout_is_pythias_and_round_trips(tmp_path):
    recs = make_store(tmp_path / "a.grids")
    convert_main([str(tmp_path / "a.grids"), str(tmp_path / "vqa_feats"), "--to", "npy"])
    arr = np.load(tmp_path / "vqa_feats" / "101.npy")
    assert arr.shape == (1, 3, 3, 6) and arr.dtype == np.float32  # 1 x H x W x C, float32
    assert np.load(tmp_path / "vqa_feats_fc" / "101.npy").shape == (5,)
    assert detect_format(tmp_path / "vqa_feats") == "npy"
    assert_same(NpyDirGrids(tmp_path / "vqa_feats"), recs)
    convert_main([str(tmp_path / "vqa_feats"), str(tmp_path / "back.grids")])  # encoder kept in clipvil_meta.json
    back = open_image_store(tmp_path / "back.grids", encoder="clip_r50x4")
    assert back.dtype == np.float16 and back.preset == {"name": "caption"}
    assert_same(back, recs)


def test_foreign_npy_folder_needs_an_encoder_name(tmp_path):
    folder = tmp_path / "pythia"
    folder.mkdir()
    np.save(folder / "7.npy", np.ones((1, 2, 3, 4), np.float32))
    with pytest.raises(DataFormatError, match="pass --encoder NAME"):
        convert_grids(folder, tmp_path / "x.grids")
    out = convert_grids(folder, tmp_path / "x.grids", encoder="clip_r50", dtype="float32")
    store = open_image_store(out)
    assert store.encoder["architecture"] == "RN50-quickgelu" and store.encoder["weights"] is None
    np.testing.assert_array_equal(store.get(7), np.ones((2, 3, 4)))


def test_npz_layout_is_imagecaptionings(tmp_path):
    recs = make_store(tmp_path / "a.grids", mask=True)
    convert_grids(tmp_path / "a.grids", tmp_path / "coco_att", dst_format="npz")
    with np.load(tmp_path / "coco_att" / "100.npz") as z:
        assert z["feat"].shape == (2, 3, 6) and z["mask"].dtype == bool
    assert np.load(tmp_path / "coco_fc" / "100.npy").shape == (5,)
    reader = NpzDirGrids(tmp_path / "coco_att", fc_dir=tmp_path / "coco_fc")
    assert_same(reader, recs)
    convert_grids(tmp_path / "coco_att", tmp_path / "b.grids", fc_dir=tmp_path / "coco_fc")
    assert_same(open_image_store(tmp_path / "b.grids"), recs)
    # a flattened (N, C) feat reads as N x 1 cells
    np.savez(tmp_path / "coco_att" / "999.npz", feat=np.zeros((4, 6), np.float32))
    np.save(tmp_path / "coco_fc" / "999.npy", np.zeros(5, np.float32))
    assert NpzDirGrids(tmp_path / "coco_att", tmp_path / "coco_fc").get_record("999").grid.shape == (4, 1, 6)


def test_lmdb_round_trip(tmp_path):
    pytest.importorskip("lmdb")
    recs = make_store(tmp_path / "a.grids", mask=True)
    convert_main([str(tmp_path / "a.grids"), str(tmp_path / "coco.lmdb")])
    with open_grids(tmp_path / "coco.lmdb") as reader:  # one open LMDB environment per process
        assert reader.meta["encoder"]["name"] == "clip_r50x4"
        assert_same(reader, recs)
    convert_grids(tmp_path / "coco.lmdb", tmp_path / "c.grids")
    assert_same(open_image_store(tmp_path / "c.grids"), recs)


def test_bad_foreign_records_name_the_file_image_and_field(tmp_path):
    folder = tmp_path / "feats"
    folder.mkdir()
    np.save(folder / "1.npy", np.ones((1, 2, 2, 4), np.float32))
    np.save(folder / "2.npy", np.ones((2, 2, 4), np.float32))
    bad = np.ones((1, 2, 2, 4), np.float32)
    bad[0, 1, 1, 2] = np.nan
    np.save(folder / "3.npy", bad)
    np.save(folder / "4.npy", np.ones((1, 2, 2, 5), np.float32))
    r = NpyDirGrids(folder)
    r.get_record("1")
    with pytest.raises(DataFormatError, match=r"2.npy, record image 2, field 'feat': must have shape \(1, H, W, C\)"):
        r.get_record("2")
    with pytest.raises(DataFormatError, match=r"3.npy, record image 3, field 'grid': holds NaN"):
        r.get_record("3")
    with pytest.raises(DataFormatError, match=r"4.npy, record image 4, field 'grid': must have shape \(H, W, 4\)"):
        r.get_record("4")
    with pytest.raises(KeyError, match="image 5 has no 5.npy"):
        r.get_record("5")
    with pytest.raises(DataFormatError, match="2.npy, record image 2"):  # a conversion stops at the first bad record
        convert_grids(folder, tmp_path / "x.grids", encoder="clip_r50")
    assert not (tmp_path / "x.grids").exists()
    make_store(tmp_path / "m.grids", mask=True)
    with pytest.raises(DataFormatError, match="field 'mask': the .npy-per-image layout cannot hold"):
        convert_grids(tmp_path / "m.grids", tmp_path / "m_npy", dst_format="npy")
    with pytest.raises(DataFormatError, match="encoder.name.*'clip_r50x4', not 'clip_r50'"):
        convert_grids(tmp_path / "m.grids", tmp_path / "y.grids", encoder="clip_r50")
