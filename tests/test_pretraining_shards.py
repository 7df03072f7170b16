"""Pre-resized image shards: same pixels as decoding the files, several readers, atomic writes, damaged folders named."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pretraining.images import FolderImages, index_images
from pretraining.pairs import PairDataset, collate, lxmert_pairs
from pretraining.shards import ShardDataset, ShardImages, write_image_shards
from scripts.make_image_shards import main as make_shards
from vln.errors import DataFormatError

CANVAS = (24, 40)
SIZES = [(30, 40), (40, 30), (24, 40), (10, 80), (64, 64), (50, 70), (12, 16)]


@pytest.fixture
def image_dir(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "images"
    for i, (h, w) in enumerate(SIZES):
        sub = root / ("train2014" if i % 2 else "vg")
        sub.mkdir(parents=True, exist_ok=True)
        name = f"COCO_train2014_{i:012d}.jpg" if i % 2 else f"{1000 + i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(sub / name)
    return root


def test_shards_hold_exactly_the_decoded_images(image_dir, tmp_path):
    out = tmp_path / "imgs.shards"
    summary = make_shards(["--images", str(image_dir), "--size", "24x40", "--out", str(out), "--workers", "0",
                           "--records-per-shard", "3", "--quiet"])
    assert summary["records"] == 7 and summary["shards"] == 3
    assert sorted(p.name for p in out.iterdir()) == ["keys.json", "meta.json", "shard_00000.bin", "shard_00001.bin",
                                                      "shard_00002.bin", "sizes.npy"]
    shards, files = ShardImages(out), FolderImages(index_images(image_dir), CANVAS)
    assert len(shards) == 7 and shards.canvas == CANVAS and set(shards.keys) == set(files.index)
    for key in files.index:
        (a, sa), (b, sb) = shards[key], files[key]
        assert sa == sb and a.dtype == torch.uint8 and torch.equal(a, b)
    assert "1" in shards and "999" not in shards
    with pytest.raises(KeyError, match="not in the image shards"):
        shards["999"]


def test_several_dataloader_workers_read_one_shard_folder(image_dir, tmp_path):
    items = sorted(index_images(image_dir).items())
    write_image_shards(items, tmp_path / "s", CANVAS, records_per_shard=2)
    images = ShardImages(tmp_path / "s")
    images["1"]  # a map opened in the parent must not be shared with the workers
    loader = torch.utils.data.DataLoader(ShardDataset(images), batch_size=2, num_workers=2)
    got = {k: img for b in loader for k, img in zip(b["image_id"], b["image"])}
    assert sorted(got) == sorted(k for k, _ in items)
    for k, _ in items:
        assert torch.equal(got[k], images[k][0])


def test_pairs_read_images_from_shards(image_dir, tmp_path):
    write_image_shards(sorted(index_images(image_dir).items()), tmp_path / "s", CANVAS)
    data = [{"img_id": "COCO_train2014_000000000003", "sentf": {"mscoco": ["a view."]}, "labelf": {}},
            {"img_id": "1004", "sentf": {"vg": ["a wall."]}, "labelf": {}}]
    (tmp_path / "p.json").write_text(json.dumps(data))
    pairs = lxmert_pairs(tmp_path / "p.json")  # no image folder: keys only
    from_shards = collate([PairDataset(pairs, ShardImages(tmp_path / "s"))[i] for i in range(2)])
    from_files = collate([PairDataset(pairs, FolderImages(index_images(image_dir), CANVAS))[i] for i in range(2)])
    assert torch.equal(from_shards["image"], from_files["image"]) and torch.equal(from_shards["size"], from_files["size"])


def test_a_bad_image_leaves_no_folder_and_names_the_file(image_dir, tmp_path):
    out = tmp_path / "s"
    write_image_shards(sorted(index_images(image_dir).items()), out, CANVAS)
    before = sorted((p.name, p.stat().st_size) for p in out.iterdir())
    bad = image_dir / "vg" / "1002.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(DataFormatError, match="cannot be decoded") as e:
        write_image_shards(sorted(index_images(image_dir).items()), out, CANVAS, records_per_shard=2)
    assert e.value.path == str(bad) and e.value.record == "image 1002"
    assert sorted((p.name, p.stat().st_size) for p in out.iterdir()) == before  # the old folder is untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary folder left


def test_damaged_shard_folders_are_named(image_dir, tmp_path):
    out = tmp_path / "s"
    write_image_shards(sorted(index_images(image_dir).items()), out, CANVAS, records_per_shard=4)
    with open(out / "shard_00001.bin", "r+b") as f:
        f.truncate(100)
    with pytest.raises(DataFormatError, match="holds 100 bytes, expected 8,640") as e:
        ShardImages(out)
    assert e.value.path == str(out / "shard_00001.bin")
    (out / "meta.json").unlink()
    with pytest.raises(FileNotFoundError, match="make_image_shards"):
        ShardImages(out)
    with pytest.raises(FileNotFoundError):
        make_shards(["--images", str(tmp_path / "nope"), "--out", str(tmp_path / "x"), "--quiet"])
