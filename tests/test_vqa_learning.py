"""The learning check at a small budget: MCAN on semantic grids beats a question-only model and
shuffled images on held-out houses, in one run (a 10-house world, tiny images)."""
import pytest

from synthetic_helpers import SMALL_PATHS

BUDGET = ["--hidden", "32", "--layers", "1", "--ff", "64", "--heads", "2", "--pool", "3", "--threads", "1",
          "--batch-size", "32", "--lr", "3e-3", "--dropout", "0", "--min-answer-count", "3"]


@pytest.fixture(scope="module")
def ten_house_corpus(tmp_path_factory):
    from features.semantic_grid import ensure_semantic_grid_store
    from vlcorpus import make_vl_corpus
    from vln.synthetic import generate_world

    root = tmp_path_factory.mktemp("vqa_learning")
    generate_world(root / "world", houses=10, seed=7, face_size=32, paths_per_house=SMALL_PATHS)
    make_vl_corpus(root / "world", root / "vl", seed=3, image_size="tiny", viewpoints_per_house=6)
    ensure_semantic_grid_store(root / "vl", "vqa")
    return root / "vl"


@pytest.mark.slow
def test_mcan_uses_the_image_on_held_out_houses(ten_house_corpus, tmp_path):
    from vqa.learning_check import learning_check

    scores = learning_check(tmp_path, ["--data-dir", str(ten_house_corpus), "--epochs", "8", "--no-progress", *BUDGET])
    real, zero, shuffle = (scores[c] for c in ("real", "zero", "shuffle"))
    assert real["overall"] > zero["overall"] + 4 and real["overall"] > shuffle["overall"] + 4, scores
    # "other" (colours, rooms, object kinds) cannot be answered from the question alone
    assert real["perAnswerType"]["other"] > zero["perAnswerType"]["other"] + 10, scores
    assert real["perAnswerType"]["other"] > shuffle["perAnswerType"]["other"] + 10, scores
