"""Pre-training pairs (synthetic corpus, LXMERT JSON) and their images (fit into a canvas, CLIP normalisation)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from pretraining.images import FolderImages, fit_size, image_key, index_images, load_image, normalize, read_resized
from pretraining.pairs import PairDataset, collate, lxmert_pairs, synthetic_pairs
from vl_helpers import small_corpus  # noqa: F401 - session fixture
from synthetic_helpers import small_world  # noqa: F401 - the corpus builds on it
from vln.errors import DataFormatError

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def write_image(path, h, w, seed=0):
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
    return path


@pytest.fixture
def lxmert_dir(tmp_path):
    """Two images (a COCO name and a Visual Genome number) and an LXMERT file over them."""
    images = tmp_path / "images"
    write_image(images / "train2014" / "COCO_train2014_000000000009.jpg", 48, 64, seed=1)
    write_image(images / "vg" / "2354786.png", 64, 40, seed=2)
    data = [
        {"img_id": "COCO_train2014_000000000009", "sentf": {"mscoco": ["A cat on a mat.", "A mat."],
                                                            "vqa": ["what is on the mat?"]},
         "labelf": {"vqa": [{"cat": 1.0, "dog": 0.3}]}},
        {"img_id": "2354786", "sentf": {"vg": ["a red door"], "gqa": ["is the door red?", "what colour is it?"]},
         "labelf": {"gqa": [{"yes": 1.0}, {"red": 1.0}]}, "extra": 1},
    ]
    path = tmp_path / "mscoco_train.json"
    path.write_text(json.dumps(data))
    return path, images, data


def test_lxmert_pairs_one_per_sentence_with_labels_on_questions(lxmert_dir):
    path, images, _ = lxmert_dir
    pairs = lxmert_pairs(path, images)
    assert len(pairs) == 6
    got = [(p.image_id, p.source, p.text, p.labels) for p in (pairs[i] for i in range(len(pairs)))]
    assert got == [("9", "mscoco", "A cat on a mat.", None), ("9", "mscoco", "A mat.", None),
                   ("9", "vqa", "what is on the mat?", {"cat": 1.0, "dog": 0.3}),
                   ("2354786", "vg", "a red door", None), ("2354786", "gqa", "is the door red?", {"yes": 1.0}),
                   ("2354786", "gqa", "what colour is it?", {"red": 1.0})]
    assert pairs[0].image_path.name == "COCO_train2014_000000000009.jpg" and pairs[4].image_path.suffix == ".png"
    assert pairs.qa_answers() == ["cat", "yes", "red"]
    captions = lxmert_pairs(path, images, sources=["mscoco", "vg"])
    assert captions.texts == ["A cat on a mat.", "A mat.", "a red door"] and not captions.labels
    assert lxmert_pairs(path).image_paths == [None, None]  # images from shards: no folder needed


@pytest.mark.parametrize("edit, record, field", [
    (lambda d: d[0]["sentf"]["vqa"].__setitem__(0, 7), "img_id COCO_train2014_000000000009", "sentf.vqa[0]"),
    (lambda d: d[1]["labelf"]["gqa"].__setitem__(1, {"red": 2.0}), "img_id 2354786", "labelf.gqa"),
    (lambda d: d[1]["labelf"]["gqa"].pop(), "img_id 2354786", "labelf.gqa"),
    (lambda d: d[1].__setitem__("img_id", "77"), "img_id 77", "img_id"),
    (lambda d: d[0].pop("sentf"), "img_id COCO_train2014_000000000009", "sentf"),
    (lambda d: d[1]["sentf"].__setitem__("vg", "a red door"), "img_id 2354786", "sentf.vg"),
])
def test_malformed_lxmert_names_file_record_and_field(lxmert_dir, edit, record, field):
    path, images, data = lxmert_dir
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError) as e:
        lxmert_pairs(path, images)
    assert e.value.path == str(path) and e.value.record == record and e.value.field.startswith(field)


def test_synthetic_pairs_split_by_houses(small_corpus):  # noqa: F811
    _, corpus, _ = small_corpus
    train, val = synthetic_pairs(corpus, "train"), synthetic_pairs(corpus, "val")
    raw = json.loads((corpus / "lxmert" / "mscoco_train.json").read_text())
    assert len(train) == sum(len(s) for d in raw for s in d["sentf"].values())
    assert set(train.sources) == {"mscoco", "vqa"}
    assert len(train.labels) == sum(len(d["labelf"].get("vqa", [])) for d in raw)
    assert not set(train.image_ids) & set(val.image_ids)
    assert all(p.is_file() and "train2014" in p.parts for p in train.image_paths)
    with pytest.raises(ValueError, match="not one of"):
        synthetic_pairs(corpus, "minival")


def test_images_fit_the_canvas_and_pad_with_zeros(tmp_path):
    assert fit_size(480, 640, (384, 640)) == (384, 512)  # the pretrain preset: short side 384
    assert fit_size(300, 1000, (384, 640)) == (192, 640)  # long side <= 640
    assert fit_size(640, 480, (384, 640)) == (384, 288)  # portrait: fitted into the same landscape canvas
    path = write_image(tmp_path / "a.png", 30, 40, seed=3)
    pix, size = read_resized(path, (24, 40))
    assert pix.shape == (3, 24, 40) and pix.dtype == torch.uint8 and size == (24, 32)
    assert pix[:, :, 32:].eq(0).all()
    with Image.open(path) as im:
        ref = np.asarray(im.resize((32, 24), Image.Resampling.BICUBIC))
    assert np.array_equal(pix[:, :, :32].permute(1, 2, 0).numpy(), ref)


def test_normalize_uses_the_encoder_statistics(tmp_path):
    path = write_image(tmp_path / "b.jpg", 20, 40, seed=4)
    x, size = load_image(path, (24, 40), "clip_r50")
    pix, _ = read_resized(path, (24, 40))
    mean, std = torch.tensor(CLIP_MEAN).view(3, 1, 1), torch.tensor(CLIP_STD).view(3, 1, 1)
    assert size == (20, 40) and x.dtype == torch.float32
    assert torch.allclose(x[:, :20], (pix[:, :20].float() / 255 - mean) / std, atol=1e-6)
    assert x[:, 20:].eq(0).all()  # padding is the mean colour
    batch = normalize(torch.stack([pix, pix]), torch.tensor([[20, 40], [10, 16]]), "clip_r50")
    assert torch.equal(batch[0], x) and batch[1, :, 10:].eq(0).all() and batch[1, :, :, 16:].eq(0).all()


def test_bad_images_are_named(tmp_path):
    bad = tmp_path / "imgs" / "COCO_val2014_000000000042.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"not a jpeg")
    assert image_key(bad.name) == "42" and image_key("2354786") == "2354786"
    with pytest.raises(DataFormatError, match="cannot be decoded"):
        read_resized(bad, (32, 32))
    write_image(tmp_path / "imgs" / "sub" / "42.png", 8, 8)
    with pytest.raises(DataFormatError, match="same image key"):
        index_images(tmp_path / "imgs")
    with pytest.raises(FileNotFoundError):
        index_images(tmp_path / "none")


def test_pair_dataset_batches_images_and_texts(lxmert_dir):
    path, images, _ = lxmert_dir
    pairs = lxmert_pairs(path, images)
    ds = PairDataset(pairs, FolderImages(index_images(images), (32, 48)))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, collate_fn=collate)))
    assert batch["image"].shape == (4, 3, 32, 48) and batch["image"].dtype == torch.uint8
    assert batch["size"].tolist() == [[32, 43], [32, 43], [32, 43], [32, 20]]
    assert batch["text"][3] == "a red door" and batch["labels"][2] == {"cat": 1.0, "dog": 0.3}
    assert batch["index"].tolist() == [0, 1, 2, 3]
    with pytest.raises(KeyError, match="not in the image source"):
        PairDataset(pairs, FolderImages({}, (32, 48)))
