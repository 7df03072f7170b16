"""features.extract and scripts/extract_features.py on a tiny skybox set made in the test."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from PIL import Image

from features.encoders import build_open_clip
from features.extract import extract_features, list_viewpoints
from features.panorama import PanoramaRenderer
from features.registry import get_spec
from features.store import open_feature_store
from graph_builders import TINY_SCAN
from vln.render import load_skybox_faces, skybox_paths


def write_skyboxes(scans_dir, connectivity, size=16, seed=0):
    rng = np.random.default_rng(seed)
    for scan, vp, _ in list_viewpoints(connectivity):
        for path in skybox_paths(scans_dir, scan, vp):
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path, format="JPEG")


@pytest.fixture(scope="module")
def tiny_encoder():
    spec = dataclasses.replace(get_spec("clip_r50"), name="tiny_clip_r50", input_size=(32, 32), render_size=(32, 32),
                               options={"force_image_size": 32})
    torch.manual_seed(0)
    return build_open_clip(spec, "random").to("cpu")


@pytest.fixture
def world(tmp_path, tiny_connectivity):
    scans = tmp_path / "scans"
    write_skyboxes(scans, tiny_connectivity)
    return scans, tiny_connectivity


def test_list_viewpoints_includes_excluded(tiny_connectivity):
    vps = list_viewpoints(tiny_connectivity)
    assert len(vps) == 6 and all(s == TINY_SCAN for s, _, _ in vps)
    assert vps[0][2].shape == (3, 3)


def test_extracted_rows_equal_direct_render_and_encode(world, tiny_encoder, tmp_path):
    scans, conn = world
    vps = list_viewpoints(conn)
    stats = extract_features(tiny_encoder, vps, scans, tmp_path / "out.feats", batch_viewpoints=4, workers=2,
                             progress=False)
    assert stats["views"] == 6 * 36 and stats["skipped"] == 0
    store = open_feature_store(tmp_path / "out.feats")
    assert store.keys() == [(s, v) for s, v, _ in vps] and store.dim == 1024
    assert store.metadata["random_weights"] is True and store.metadata["encoder"]["name"] == "tiny_clip_r50"
    assert store.metadata["image_w"] == 32 and store.metadata["vfov"] == 60.0
    scan, vp, rot = vps[3]
    faces = torch.from_numpy(load_skybox_faces(scans, scan, vp))[None]
    views = PanoramaRenderer(32, 32, get_spec("clip_r50").render_vfov, "cpu").render(faces, torch.from_numpy(rot)[None])
    ref = tiny_encoder(views.reshape(36, 3, 32, 32)).numpy()
    np.testing.assert_allclose(store.get(scan, vp), ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(store.get(scan, vp), axis=1), 1.0, rtol=1e-5)


def test_interrupted_extraction_resumes_and_matches_a_clean_run(world, tiny_encoder, tmp_path):
    scans, conn = world
    vps = list_viewpoints(conn)
    clean = tmp_path / "clean.feats"
    extract_features(tiny_encoder, vps, scans, clean, batch_viewpoints=2, workers=1, progress=False)
    # Interrupt the run at the 5th viewpoint: its skybox is missing.
    missing = skybox_paths(scans, vps[4][0], vps[4][1])[0]
    saved = missing.read_bytes()
    missing.unlink()
    out = tmp_path / "resumed.tsv"
    with pytest.raises(FileNotFoundError, match=vps[4][1]):
        extract_features(tiny_encoder, vps, scans, out, batch_viewpoints=2, workers=1, progress=False, commit_every=1)
    assert not out.exists()
    missing.write_bytes(saved)
    stats = extract_features(tiny_encoder, vps, scans, out, batch_viewpoints=2, workers=1, progress=False)
    assert stats["skipped"] == 4 and stats["views"] == 2 * 36
    a, b = open_feature_store(clean), open_feature_store(out)
    assert set(a.keys()) == set(b.keys())
    for key in a.keys():
        np.testing.assert_allclose(b.get(*key), a.get(*key), rtol=1e-5, atol=1e-6)
    assert b.random_weights is True
    assert not out.with_name(out.name + ".work.feats").exists()


@pytest.mark.slow
def test_cli_extracts_with_a_registered_encoder(world, tmp_path, capsys):
    from scripts.extract_features import main

    scans, conn = world
    out = tmp_path / "features" / "clip_r50.feats"
    stats = main(["--encoder", "clip_r50", "--weights", "random", "--scans-dir", str(scans), "--connectivity",
                  str(conn), "--out", str(out), "--limit", "1", "--no-progress", "--device", "cpu"])
    assert stats["views"] == 36
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["views"] == 36
    store = open_feature_store(out)
    assert len(store) == 1 and store.dim == 1024 and store.random_weights is True
    # the same command again finds everything done
    again = main(["--encoder", "clip_r50", "--weights", "random", "--scans-dir", str(scans), "--connectivity",
                  str(conn), "--out", str(out), "--limit", "1", "--no-progress", "--device", "cpu"])
    assert again["views"] == 0 and again["skipped"] == 1
