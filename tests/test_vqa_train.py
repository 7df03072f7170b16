"""train_vqa / eval_vqa end to end on the tiny corpus: exact resume, checkpoint scoring, official export."""
import json

import pytest
import torch

from vln.errors import DataFormatError
from vqa.recipes import RECIPES
from vqa_helpers import small_corpus, small_world, vqa_corpus  # noqa: F401 - fixtures

TINY = ["--hidden", "32", "--layers", "1", "--ff", "64", "--heads", "2", "--pool", "3", "--threads", "1",
        "--batch-size", "16", "--lr", "1e-3", "--no-progress", "--latest-every", "3"]


def train(corpus, out, *extra):
    from scripts import train_vqa

    return train_vqa.main(["--data-dir", str(corpus), "--out", str(out), *TINY, *extra])


@pytest.fixture(scope="module")
def trained(vqa_corpus, tmp_path_factory):
    corpus, _ = vqa_corpus
    out = tmp_path_factory.mktemp("vqa") / "full"
    return corpus, out, train(corpus, out, "--epochs", "2")


def test_recipes_match_the_papers():
    mcan = RECIPES.get("mcan")
    assert (mcan.optimizer, mcan.lr, mcan.batch_size, mcan.epochs, mcan.betas, mcan.eps) == ("adam", 5e-5, 64, 13, (0.9, 0.98), 1e-9)
    assert [mcan.lr_factor(e) for e in range(13)] == pytest.approx([0.25, 0.5, 0.75] + [1.0] * 7 + [0.2, 0.2, 0.04])
    pythia = RECIPES.get("pythia")
    assert (pythia.optimizer, pythia.lr, pythia.batch_size) == ("adamax", 0.01, 512)


def test_resume_continues_exactly(trained, tmp_path):
    corpus, _, full = trained
    half = train(corpus, tmp_path / "run", "--epochs", "1")
    assert half["iteration"] * 2 == full["iteration"]
    resumed = train(corpus, tmp_path / "run", "--epochs", "2")
    assert resumed["iteration"] == full["iteration"]
    for k, v in full["model"].state_dict().items():
        torch.testing.assert_close(resumed["model"].state_dict()[k], v, rtol=0, atol=0, msg=k)
    assert resumed["scores"] == full["scores"] and set(full["scores"]["perAnswerType"]) <= {"yes/no", "number", "other"}


def test_checkpoint_scoring_and_official_export(trained, tmp_path, capsys):
    from scripts import eval_vqa

    corpus, run, full = trained
    export = tmp_path / "results.json"
    from training.checkpoint import load_checkpoint
    from vqa.train import FORMAT

    latest = eval_vqa.main(["--checkpoint", str(run / "latest.pt"), "--split", "val2014"])
    assert latest == full["scores"]                                    # the last validation
    scores = eval_vqa.main(["--checkpoint", str(run), "--split", "val2014", "--export", str(export)])
    assert scores == load_checkpoint(run / "best_val.pt", fmt=FORMAT)[1]["scores"]   # a run folder: its best
    results = json.loads(export.read_text())
    assert all(set(r) == {"question_id", "answer"} and isinstance(r["answer"], str) for r in results)
    files = ["--questions", str(corpus / "vqa" / "v2_OpenEnded_mscoco_val2014_questions.json"),
             "--annotations", str(corpus / "vqa" / "v2_mscoco_val2014_annotations.json")]
    capsys.readouterr()
    again = eval_vqa.main(["--results", str(export), *files, "--per-question", str(tmp_path / "pq.json")])
    assert json.loads(capsys.readouterr().out) == again == scores
    per_q = json.loads((tmp_path / "pq.json").read_text())
    assert sorted(per_q) == sorted(str(r["question_id"]) for r in results)
    json.dump(results[1:], open(export, "w"))
    with pytest.raises(DataFormatError, match="1 question ids unanswered"):
        eval_vqa.main(["--results", str(export), *files])


def test_pythia_trains_with_its_recipe(vqa_corpus, tmp_path):
    corpus, _ = vqa_corpus
    out = train(corpus, tmp_path / "p", "--model", "pythia", "--epochs", "1", "--val-split", "none")
    assert out["iteration"] > 0 and (tmp_path / "p" / "latest.pt").exists()
    params = json.loads((tmp_path / "p" / "params.json").read_text())
    assert params["model"] == "pythia"


def test_glove_rows_initialise_the_embedding(tmp_path):
    from vqa.train import read_glove

    (tmp_path / "g.txt").write_text("cat " + " ".join(["0.5"] * 300) + "\nzebra " + " ".join(["1"] * 300) + "\n")
    rows = read_glove(str(tmp_path / "g.txt"), ["<PAD>", "<UNK>", "cat"], 300)
    assert rows.shape == (3, 300) and (rows[2] == 0.5).all() and (rows[0] == 0).all()
    (tmp_path / "bad.txt").write_text("cat 1 2\n")
    with pytest.raises(DataFormatError, match="bad.txt.*line 1.*cat"):
        read_glove(str(tmp_path / "bad.txt"), ["<PAD>", "<UNK>", "cat"], 300)


def test_bad_settings_are_one_line_errors(vqa_corpus, tmp_path):
    from vqa.sources import SettingError

    corpus, _ = vqa_corpus
    with pytest.raises(SettingError, match="synthetic_semantic_grid exists only"):
        train(corpus / "vqa", tmp_path / "x", "--dataset", "vqa2")
    with pytest.raises(FileNotFoundError, match="no image grid store"):
        train(corpus, tmp_path / "y", "--features", str(tmp_path / "missing.grids"))
