"""features.provenance: every store records its encoder; training, resuming, export and speaking
refuse another encoder's features or random-weight features unless asked."""
from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from agents.config import TrainConfig
from agents.trainer import Trainer
from env_fixtures import FEATURE_DIM, write_data_root
from features.provenance import (
    CHECKPOINT_KEY,
    FeatureProvenanceError,
    check_store,
    encoder_record,
    record_of_spec,
    stamp,
)
from features.store import open_feature_store, write_feature_store
from features.store_tsv import meta_path

SMALL = dict(hidden=32, word_embedding=16, action_embedding=8, progress=False, log_every=1000, batch_size=4,
             eval_splits="val_unseen", dataset="r2r")
ENC_A = encoder_record("enc_a", "RN50x4-quickgelu", "/w/RN50x4.pt", "a" * 64)
ENC_B = encoder_record("enc_b", "ViT-B-32-quickgelu", "ViT-B-32.pt", "b" * 64)


@pytest.fixture
def root(tmp_path):
    """The toy data root with two non-random stores of the same dimension by different encoders."""
    root = write_data_root(tmp_path / "data")
    toy = open_feature_store(root / "features" / "toy.feats")
    items = [(s, v, toy.get(s, v)) for s, v in toy.keys()]
    for name, rec in (("a", ENC_A), ("b", ENC_B)):
        write_feature_store(root / "features" / f"{name}.feats", items, stamp({"image_w": 8}, rec))
    return root


def test_every_store_format_records_the_encoder(root, tmp_path):
    a = open_feature_store(root / "features" / "a.feats")
    assert a.provenance == ENC_A and ENC_A["weights"] == "RN50x4.pt" and a.random_weights is False
    from features.store import convert_feature_store

    tsv = convert_feature_store(root / "features" / "a.feats", tmp_path / "a.tsv")
    assert open_feature_store(tsv).provenance == ENC_A
    assert json.loads(meta_path(tsv).read_text())["provenance"] == ENC_A
    # older stores (encoder + random_weights fields, no record) still say what they are
    toy = open_feature_store(root / "features" / "toy.feats")
    assert toy.provenance["name"] == "toy" and toy.random_weights is True


def test_released_tsv_is_accepted_with_one_notice_and_can_be_stamped(root, tmp_path, caplog):
    from scripts.convert_features import main as convert

    src = tmp_path / "released.tsv"
    convert([str(root / "features" / "a.feats"), str(src)])
    meta_path(src).unlink()  # a released TSV has no sidecar
    store = open_feature_store(src)
    assert store.provenance is None and store.random_weights is None
    with caplog.at_level(logging.WARNING, logger="features.provenance"):
        assert check_store(store, expected=ENC_B) is None
        assert check_store(store) is None
    notices = [r for r in caplog.records if "unknown provenance" in r.getMessage()]
    assert len(notices) == 1 and str(src) in notices[0].getMessage()
    out = convert([str(src), str(tmp_path / "stamped.feats"), "--encoder", "clip_r50x4"])
    assert out["provenance"] == record_of_spec("clip_r50x4")
    assert out["provenance"]["architecture"] == "RN50x4-quickgelu" and out["provenance"]["weights"] == "openai"
    with pytest.raises(FeatureProvenanceError, match="records features of enc_a"):
        convert([str(root / "features" / "a.feats"), str(tmp_path / "x.feats"), "--encoder", "clip_r101"])


def test_random_features_are_refused_unless_asked(root, tmp_path):
    cfg = TrainConfig(features=str(root / "features" / "toy.feats"), data_dir=str(root), out=str(tmp_path / "r"),
                      iters=1, **SMALL)
    with pytest.raises(FeatureProvenanceError, match="RANDOM weights.*--allow-random-features"):
        Trainer(cfg)
    cfg.allow_random_features = True
    assert Trainer(cfg).feature_record["random"] is True


def test_checkpoint_records_its_encoder_and_another_encoder_of_the_same_dim_is_refused(root, tmp_path):
    from agents.checkpoint import load_checkpoint
    from scripts import export_submission

    dims = {open_feature_store(root / "features" / f"{n}.feats").dim for n in "ab"}
    assert dims == {FEATURE_DIM}  # the dimension check alone would let them mix
    out = tmp_path / "run"
    cfg = TrainConfig(features=str(root / "features" / "a.feats"), data_dir=str(root), out=str(out), iters=2,
                      eval_every=2, **SMALL)
    Trainer(cfg).train()
    _, meta = load_checkpoint(out / "latest.pt")
    assert meta[CHECKPOINT_KEY] == ENC_A
    args = ["--checkpoint", str(out / "latest.pt"), "--dataset", "r2r", "--data-dir", str(root), "--split",
            "val_unseen", "--out", str(tmp_path / "submit.json")]
    with pytest.raises(FeatureProvenanceError, match=r"b\.feats holds features of enc_b .* was trained on enc_a"):
        export_submission.main(args + ["--features", str(root / "features" / "b.feats")])
    assert export_submission.main(args)["episodes"] == 3  # the checkpoint's own store
    # resuming the run on the other store is refused too
    cfg_b = TrainConfig(features=str(root / "features" / "b.feats"), data_dir=str(root), out=str(out), iters=4,
                        eval_every=2, **SMALL)
    with pytest.raises(FeatureProvenanceError, match=r"differ in name, architecture\)"):
        Trainer(cfg_b)


def test_same_encoder_from_another_weights_file_is_reported_not_refused(tmp_path, caplog):
    """RN50x4.pt and open_clip_model.safetensors hold the same OpenAI weights with different bytes."""
    other = dict(ENC_A, weights="open_clip_model.safetensors", weights_sha256="c" * 64)
    items = [("s", "v", np.ones((36, 4), np.float32))]
    write_feature_store(tmp_path / "o.feats", items, stamp({}, other))
    with caplog.at_level(logging.WARNING, logger="features.provenance"):
        assert check_store(open_feature_store(tmp_path / "o.feats"), expected=ENC_A, expected_from="ckpt") == other
    assert "another weights file of the same encoder" in caplog.text
