"""The captioning trainer on the tiny synthetic corpus: exact resume, SCST steps, the learning check."""
import json
import shutil

import pytest
import torch

from caption_helpers import one_thread  # noqa: F401 - autouse fixture

from vl_helpers import small_corpus  # noqa: F401 - fixture
from synthetic_helpers import small_world  # noqa: F401 - fixture small_corpus builds on

TINY = ["--d-model", "32", "--n-layers", "1", "--n-heads", "2", "--d-ff", "64", "--batch-images", "4",
        "--no-progress", "--beam", "2", "--warmup", "20", "--lr", "2e-3"]


def train(corpus, out, *extra):
    from scripts.train_caption import main

    return main(["--data-dir", str(corpus), "--out", str(out), *TINY, *extra])


def test_resume_continues_exactly_through_scst(small_corpus, tmp_path):  # noqa: F811
    _, corpus, _ = small_corpus
    args = ("--scst-after", "1", "--eval-every", "0", "--scst-baseline", "mean", "--scst-samples", "3")
    full = train(corpus, tmp_path / "full", "--epochs", "2", *args)
    train(corpus, tmp_path / "cut", "--epochs", "1", *args)
    resumed = train(corpus, tmp_path / "cut", "--epochs", "2", *args)
    assert resumed["iteration"] == full["iteration"] == 2 * 3
    for k, v in full["model"].state_dict().items():
        assert torch.equal(v, resumed["model"].state_dict()[k]), k


def test_scst_greedy_baseline_step_and_checkpoint_decoding(small_corpus, tmp_path):  # noqa: F811
    from captioning.evaluate import decode_checkpoint

    _, corpus, _ = small_corpus
    out = train(corpus, tmp_path / "run", "--epochs", "1", "--scst-after", "0", "--scst-samples", "2")
    assert out["iteration"] == 3 and len(out["val_cider"]) == 1
    results, refs = decode_checkpoint(tmp_path / "run" / "latest.pt", "test", beam=2)
    assert len(results) == len(refs) == 12 and all(isinstance(r["caption"], str) for r in results)
    assert {r["image_id"] for r in results} == set(refs)


@pytest.fixture(scope="module")
def six_house_corpus(tmp_path_factory):
    """A 6-house corpus (4 train houses, 96 training images; 1 val, 1 test house) with 7 x 7 grids."""
    from features.grid_presets import make_preset
    from features.semantic_grid import write_semantic_grid_store
    from vlcorpus import make_vl_corpus
    from vln.synthetic import generate_world

    root = tmp_path_factory.mktemp("cap6")
    generate_world(root / "world", houses=6, seed=7, face_size=32,
                   paths_per_house={"train": 1, "val_seen": 1, "val_unseen": 1, "test": 1})
    make_vl_corpus(root / "world", root / "vl", seed=3, image_size="tiny", viewpoints_per_house=6)
    store = write_semantic_grid_store(root / "vl", make_preset("custom", size=(224, 224), pooled=True), root / "g.grids")
    return root / "vl", store


def test_small_budget_learning_check(six_house_corpus, tmp_path):
    """On the held-out test house, the trained model's CIDEr is at least twice the best constant
    caption's and twice its own on shuffled images (100 iterations)."""
    from captioning.evaluate import learning_check

    corpus, store = six_house_corpus
    out = train(corpus, tmp_path / "run", "--features", str(store), "--epochs", "10", "--scst-after", "-1",
                "--eval-every", "0", "--d-model", "64", "--n-heads", "4", "--d-ff", "128", "--batch-images", "10",
                "--warmup", "50")
    res = learning_check(out["model"], out["data"], "test", beam=2, device=torch.device("cpu"))
    assert res["cider"] >= 2 * res["cider_constant"], res
    assert res["cider"] >= 2 * res["cider_shuffled"], res


def test_best_val_checkpoint_starts_another_run_and_is_decoded(small_corpus, tmp_path, capsys):  # noqa: F811
    """best_val.pt holds the best validation's state: eval_caption decodes it, --start-from
    continues from its iteration (SCST from a cross-entropy checkpoint), other model settings are
    refused in one line."""
    from captioning.evaluate import decode_checkpoint
    from captioning.train import cider_of
    from scripts.eval_caption import main as eval_main
    from training.checkpoint import load_checkpoint
    from vln.errors import DataFormatError

    _, corpus, _ = small_corpus
    out = train(corpus, tmp_path / "xe", "--epochs", "2", "--scst-after", "-1")
    best = out["best"]
    assert best["cider"] == max(c for _, c in out["val_cider"])
    _, meta = load_checkpoint(tmp_path / "xe" / "best_val.pt", fmt="clipvil-caption-v1")
    assert meta["iteration"] == best["iteration"] == 3 * best["epoch"]
    results, _ = decode_checkpoint(tmp_path / "xe" / "best_val.pt", "val", beam=2)
    assert cider_of(results, out["data"].references("val")) == pytest.approx(best["cider"], abs=1e-12)
    if shutil.which("java"):  # pycocoevalcap (CI has Java)
        scores = eval_main(["--checkpoint", str(tmp_path / "xe" / "best_val.pt"), "--split", "val", "--beam", "2"])
        assert json.loads(capsys.readouterr().out)["CIDEr"] == scores["CIDEr"] >= 0
    scst = train(corpus, tmp_path / "scst", "--epochs", "3", "--scst-after", str(best["epoch"]), "--scst-samples", "2",
                 "--start-from", str(tmp_path / "xe" / "best_val.pt"))
    assert scst["iteration"] == 9 and scst["val_cider"][:best["epoch"]] == out["val_cider"][:best["epoch"]]
    assert len(scst["val_cider"]) == 3
    with pytest.raises(DataFormatError, match="d_model"):
        train(corpus, tmp_path / "other", "--epochs", "3", "--start-from", str(tmp_path / "xe" / "best_val.pt"),
              "--d-model", "16")


def test_learning_check_runs_scst_and_xe_from_one_checkpoint(small_corpus, tmp_path):  # noqa: F811
    """scripts/caption_learning_check.py: per seed XE, then SCST and XE continuing from the same
    checkpoint, the test-house scores with both controls, and result.json reused by a later call."""
    from scripts.caption_learning_check import main

    _, corpus, _ = small_corpus
    args = ["--out", str(tmp_path / "check"), "--seeds", "0", "--data-dir", str(corpus), "--xe-epochs", "2",
            "--scst-epochs", "1", "--start", "latest", "--no-pycoco", "--scst-samples", "2", *TINY]
    summary = main(args)
    (row,) = summary["seeds"]
    assert row["start_epoch"] == 2 and row["end_epoch"] == 3
    assert [e for e, _ in row["val_scst"]] == [e for e, _ in row["val_xe_cont"]] == [3]
    assert row["val_scst"] != row["val_xe_cont"]  # SCST steps changed the model
    for k in ("test_start", "test_xe_cont", "test_scst", "test_xe_cont_val_best", "test_scst_val_best"):
        assert row[k]["cider_d"] >= 0
    # one run's epochs after the split: the val-chosen model is the last, and the test curve ends at its score
    assert row["best_epoch_scst"] == row["best_epoch_xe_cont"] == 3
    assert row["test_curve_scst"] == [[3, pytest.approx(row["test_scst"]["cider_d"])]]
    assert row["test_curve_xe_cont"] == [[3, pytest.approx(row["test_xe_cont"]["cider_d"])]]
    assert row["test_scst_val_best"] == pytest.approx(row["test_scst"])
    assert row["test_constant"] > 0 and row["constant_caption"]
    assert summary["scst_gain"] == [row["test_scst"]["cider_d"] - row["test_xe_cont"]["cider_d"]]
    assert main(args)["seeds"] == [row]  # read back, not retrained
