"""scripts/extract_grid_features.py: store contents, resume, bad images, 2 processes = 1 process."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from features.grid import GridEncoder
from features.grid_extract import list_images
from features.grid_presets import make_preset
from features.image_store import open_image_store
from vln.errors import DataFormatError, run_script

from grid_helpers import tiny_encoder, tiny_encoders_registered, write_images

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from extract_grid_features import ERRORS, main  # noqa: E402

SIZES = [(48, 64), (64, 48), (40, 40), (48, 64), (30, 90)]
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("imgs")
    write_images(folder, SIZES)
    with tiny_encoders_registered():
        yield folder


def extract(images, out, *extra):
    return main(["--encoder", "tiny_clip_r50x4", "--images", str(images), "--out", str(out), "--weights", "random",
                 "--workers", "0", "--batch-size", "2", "--no-progress", *extra])


def test_custom_keep_aspect_store_matches_the_encoder(images, tmp_path):
    out = tmp_path / "s.grids"
    stats = extract(images, out, "--preset", "custom", "--short-side", "64", "--max-long-side", "96",
                    "--pad-to", "64x96", "--pooled", "--dtype", "fp32")
    assert stats["images"] == 5 and stats["path"] == str(out)
    store = open_image_store(out, encoder="tiny_clip_r50x4")
    assert sorted(store.ids()) == ["0000", "0001", "0002", "0003", "0004"]  # storage order: by batch
    assert store.meta["encoder"]["random"] is True and store.meta["preset"]["pad_to"] == [64, 96]
    assert store.has_mask and store.pooled_dim == 16 and store.channels == 256
    assert store.grid_shape("0001") == (3, 2)  # portrait 64 x 48 -> 85 x 64 on a 96 x 64 canvas
    rec = store.get_record("0004")  # 30 x 90 -> 32 x 96 on 64 x 96: one valid row of two
    assert rec.mask.tolist() == [[True] * 3, [False] * 3]
    # the stored record is the encoder's own output for that image (--weights random is seeded)
    from PIL import Image

    torch.manual_seed(0)
    g = GridEncoder(tiny_encoder("clip_r50x4"), pooled=True)
    with Image.open(images / "0000.jpg") as im:
        pix = np.asarray(im.convert("RGB").resize((85, 64), Image.Resampling.BICUBIC))
    grid, pooled = g(g.prepare([torch.from_numpy(pix.copy()).permute(2, 0, 1)], (64, 96)))
    rec = store.get_record("0000")
    np.testing.assert_allclose(rec.grid, grid[0].permute(1, 2, 0).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rec.pooled, pooled[0].numpy(), rtol=1e-5, atol=1e-6)
    assert rec.mask.all()  # 64 x 85 covers the first 3 columns of 2 x 3 cells


def test_resume_and_nothing_to_do(images, tmp_path):
    out = tmp_path / "r.grids"
    first = extract(images, out, "--preset", "caption", "--limit", "3")
    assert first["images"] == 3
    again = extract(images, out, "--preset", "caption", "--limit", "3")
    assert again["images"] == 0 and again["skipped"] == 3
    # an interrupted run (an unreadable image after four good ones) keeps what it wrote ...
    folder = tmp_path / "imgs"
    shutil.copytree(images, folder)
    (folder / "zzz.jpg").write_bytes(b"broken")
    with pytest.raises(DataFormatError, match="zzz.jpg"):
        extract(folder, tmp_path / "p.grids", "--preset", "caption")
    assert not (tmp_path / "p.grids").exists()
    # ... and the next run resumes: only the rest is extracted
    (folder / "zzz.jpg").unlink()
    stats = extract(folder, tmp_path / "p.grids", "--preset", "caption")
    assert stats["images"] == 1 and stats["skipped"] == 4
    full, ref = open_image_store(tmp_path / "p.grids"), open_image_store(out)
    assert sorted(full.ids()) == ["0000", "0001", "0002", "0003", "0004"] and full.grid_shape("0003") == (14, 14)
    np.testing.assert_array_equal(full.get_record("0001").pooled, ref.get_record("0001").pooled)


def test_bad_inputs_name_the_file(images, tmp_path):
    bad = tmp_path / "bad"
    write_images(bad, [(32, 32)])
    (bad / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DataFormatError, match=r"broken.jpg, record image broken, field 'pixels'"):
        extract(bad, tmp_path / "b.grids", "--preset", "caption")
    lst = tmp_path / "list.txt"
    lst.write_text(f"a {images / '0000.jpg'}\nb {images / '0001.png'}\na {images / '0002.jpg'}\n")
    with pytest.raises(DataFormatError, match=r"list.txt, line 3, record image a, field 'image_id'"):
        list_images(image_list=lst)
    lst.write_text("x missing.jpg\n")
    with pytest.raises(DataFormatError, match=r"line 1, field 'path'"):
        list_images(image_list=lst)
    argv = ["--encoder", "clip_r50", "--preset", "custom", "--images", str(images), "--out", str(tmp_path / "x.grids")]
    with pytest.raises(SystemExit, match="^error: a custom preset needs --size HxW or --short-side S$"):
        run_script(lambda: main(argv), errors=ERRORS)  # what the command line prints: one line, no traceback


@pytest.mark.slow
def test_two_processes_give_the_same_store_as_one(images, tmp_path):
    lst = tmp_path / "ids.txt"
    lst.write_text("".join(f"img{n} {p}\n" for n, p in enumerate(sorted(images.iterdir()))))
    args = ["--encoder", "tiny_clip_vit_b32", "--image-list", str(lst), "--weights", "random", "--workers", "0",
            "--batch-size", "2", "--no-progress", "--preset", "custom", "--short-side", "64", "--max-long-side", "96",
            "--dtype", "fp32"]
    main([*args, "--out", str(tmp_path / "one.grids")])  # one process: this one
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "0",
           str(REPO / "tests" / "grid_helpers.py"), *args, "--out", str(tmp_path / "two.grids")]
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    one, two = open_image_store(tmp_path / "one.grids"), open_image_store(tmp_path / "two.grids")
    assert sorted(one.ids()) == sorted(two.ids()) == [f"img{n}" for n in range(5)]
    assert two.meta["world_size"] == 2 and len(two.shards) == 2
    assert {k: v for k, v in one.meta.items() if k != "world_size"} == {k: v for k, v in two.meta.items()
                                                                        if k != "world_size"}
    for i in one.ids():
        assert one.grid_shape(i) == two.grid_shape(i)
        np.testing.assert_allclose(one.get(i), two.get(i), rtol=1e-5, atol=1e-6)
