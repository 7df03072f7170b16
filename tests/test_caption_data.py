"""Karpathy splits, vocabulary, encoded labels, malformed files, grid batches."""
import json

import numpy as np
import pytest

from captioning.data import BOS, END, UNK, CaptionBatcher, build_vocab, encode_captions, read_splits
from vln.errors import DataFormatError


def karpathy(images):
    return {"dataset": "coco", "images": images}


def image(cocoid, split, captions):
    return {"filepath": "train2014", "filename": f"{cocoid}.jpg", "imgid": cocoid, "cocoid": cocoid, "split": split,
            "sentids": list(range(len(captions))),
            "sentences": [{"tokens": c.split(), "raw": c, "imgid": cocoid, "sentid": k} for k, c in enumerate(captions)]}


def write(tmp_path, data):
    p = tmp_path / "dataset_coco.json"
    p.write_text(json.dumps(data))
    return p


def test_splits_vocab_threshold_and_labels(tmp_path):
    many = ["a red chair"] * 6 + ["a blue chair"] * 2
    images = [image(1, "train", many[:4]), image(2, "restval", many[4:]), image(3, "val", ["a red sofa"]),
              image(4, "test", ["x"])]
    splits = read_splits(write(tmp_path, karpathy(images)))
    assert [len(splits[s]) for s in ("train", "val", "test")] == [2, 1, 1]
    vocab = build_vocab(splits["train"], threshold=5)
    # a: 8, chair: 8, red: 6 are seen more than 5 times; blue (2) is not; val words never count
    assert vocab.words == ["<end>", "<bos>", "UNK", "a", "chair", "red"]
    long = image(5, "train", [" ".join(["a"] * 20 + ["blue"])])
    enc = encode_captions(splits["train"] + [long], vocab, max_len=16)
    assert enc.labels.shape == (9, 16) and enc.labels.dtype == np.int32
    assert enc.label_start_ix.tolist() == [0, 4, 8] and enc.label_end_ix.tolist() == [4, 8, 9]
    assert enc.labels[6, :4].tolist() == [3, UNK, 4, END] and enc.label_length[6] == 3
    assert enc.label_length[8] == 16 and (enc.labels[8] == 3).all()  # cut at 16 tokens
    assert enc.refs(1)[2] == [3, UNK, 4]
    assert vocab.decode([BOS, 3, 5, 4, END, 3]) == "a red chair"


@pytest.mark.parametrize("mutate, field", [
    (lambda d: d["images"][0].pop("split"), "split"),
    (lambda d: d["images"][0].update(split="holdout"), "split"),
    (lambda d: d["images"][0]["sentences"][0].update(tokens=[]), "tokens"),
    (lambda d: d["images"][1].update(cocoid=1), "cocoid"),
])
def test_malformed_karpathy_names_file_record_and_field(tmp_path, mutate, field):
    data = karpathy([image(1, "train", ["a chair"]), image(2, "val", ["a sofa"])])
    mutate(data)
    path = write(tmp_path, data)
    with pytest.raises(DataFormatError) as e:
        read_splits(path)
    assert e.value.field == field and str(path) in str(e.value) and "cocoid" in str(e.value.record)


def test_cocotalk_h5_round_trip(tmp_path):
    h5py = pytest.importorskip("h5py")  # noqa: F841 - optional extra
    from captioning.data import Vocab, read_cocotalk_h5, write_cocotalk_h5

    vocab = Vocab(["<end>", "<bos>", "UNK", "a", "chair"])
    enc = encode_captions([image(1, "train", ["a chair", "a a"]), image(2, "train", ["chair"])], vocab)
    write_cocotalk_h5(tmp_path / "cocotalk_label.h5", enc)
    back = read_cocotalk_h5(tmp_path / "cocotalk_label.h5", enc.image_ids)
    for k in ("labels", "label_length", "label_start_ix", "label_end_ix"):
        np.testing.assert_array_equal(getattr(back, k), getattr(enc, k))


def test_batches_pad_grids_and_name_missing_images(tmp_path):
    from features.image_store import ImageGridStore
    from features.image_store_writer import ImageGridWriter

    w = ImageGridWriter(tmp_path / "s.grids", channels=4, encoder={"name": "t"}, preset={"name": "p"}, dtype="float32")
    rng = np.random.default_rng(0)
    w.add("1", rng.normal(size=(2, 3, 4)).astype(np.float32))
    w.add("2", rng.normal(size=(3, 2, 4)).astype(np.float32))
    w.finish()
    with ImageGridStore(tmp_path / "s.grids") as store:
        b = CaptionBatcher(store).batch([1, 2])
        assert b["grids"].shape == (2, 3, 3, 4) and b["grids"].dtype == np.float32
        assert b["mask"].sum() == 12 and not b["mask"][0, 2].any() and not b["mask"][1, :, 2].any()
        with pytest.raises(DataFormatError, match="image 9"):
            CaptionBatcher(store).batch([9])
