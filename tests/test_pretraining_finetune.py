"""Fine-tuning CLIP-ViLp on each task format (VQA v2, GQA, SNLI-VE) from a tiny pre-training run."""
from __future__ import annotations

import json

import pytest
import torch

from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures

CANVAS = "64x96"


@pytest.fixture(scope="module")
def pretrained(small_corpus, tiny_clip_rn, tmp_path_factory):  # noqa: F811
    """A tiny pre-training run of 2 steps on the small corpus: its checkpoint.pt."""
    from pretraining.train import main

    _, corpus, _ = small_corpus
    out = tmp_path_factory.mktemp("pt") / "run"
    main(["--encoder", str(tiny_clip_rn["spec"]), "--weights", str(tiny_clip_rn["safetensors"]), "--data-dir", str(corpus),
          "--out", str(out), "--size", "tiny", "--canvas", CANVAS, "--batch-size", "8", "--num-cells", "4",
          "--vocab-size", "200", "--min-answer-count", "1", "--steps", "2", "--workers", "0", "--threads", "1",
          "--no-progress", "--eval-pairs", "8"])
    return out / "checkpoint.pt"


def finetune(corpus, init, out, task, *extra):
    from pretraining.finetune import main

    return main(["--task", task, "--init", str(init), "--corpus", str(corpus), "--out", str(out), "--batch-size", "8",
                 "--workers", "0", "--threads", "1", "--no-progress", "--log-every", "1", *extra])


@pytest.mark.parametrize("task, extra", [("vqa", ["--min-answer-count", "1"]), ("gqa", []), ("snli_ve", [])])
def test_finetune_each_task_format_scores_with_its_metric(small_corpus, pretrained, tmp_path, task, extra):  # noqa: F811
    _, corpus, _ = small_corpus
    out = tmp_path / task
    result = finetune(corpus, pretrained, out, task, "--steps", "2", *extra)
    assert result["step"] == 2 and 0 <= result["scores"]["overall"] <= 100
    for name in ("params.json", "labels.json", "latest.pt", "best_val.pt", "scores.json"):
        assert (out / name).is_file(), name
    history = json.loads((out / "scores.json").read_text())
    assert history[-1]["step"] == 2 and history[-1]["overall"] == result["scores"]["overall"]
    labels = json.loads((out / "labels.json").read_text())
    if task == "vqa":
        assert {"yes/no", "number", "other"} <= set(result["scores"]["perAnswerType"])  # the official VQA summary
    if task == "snli_ve":
        assert list(labels) == ["entailment", "neutral", "contradiction"]
        assert set(result["scores"]["perClass"]) <= set(labels)


def test_pretrained_weights_are_loaded_and_from_scratch_leaves_them_out(pretrained):
    from pretraining.finetune import build_finetune_model, read_init

    state, pre, run = read_init(pretrained)
    vocab = sum(1 for _ in open(run / "vocab.txt"))
    torch.manual_seed(0)
    warm = build_finetune_model(pre, state, vocab, 3, 0.0, 0)
    torch.manual_seed(0)
    cold = build_finetune_model(pre, None, vocab, 3, 0.0, 0)
    for name, value in warm.state_dict().items():
        if name.startswith("qa_head."):  # a new head over the task's labels
            continue
        assert torch.equal(value, state[name]), name
    moved = [n for n, v in cold.state_dict().items() if n.startswith("encoder.") and not torch.equal(v, state[n])]
    assert moved  # the Transformer starts from its initialisation, not the pre-trained weights
    assert warm.qa_head[-1].out_features == 3


def test_finetune_resumes_exactly(small_corpus, pretrained, tmp_path):  # noqa: F811
    from training.checkpoint import load_checkpoint

    from pretraining.finetune import FORMAT

    _, corpus, _ = small_corpus
    args = ["--epochs", "1", "--train-fraction", "0.5"]  # the split run also validates at its --steps
    whole = finetune(corpus, pretrained, tmp_path / "whole", "snli_ve", *args)
    finetune(corpus, pretrained, tmp_path / "split", "snli_ve", *args, "--steps", "2")
    again = finetune(corpus, pretrained, tmp_path / "split", "snli_ve", *args, "--steps", "0")  # resumed: all of it
    assert whole["step"] == again["step"] == 4 and whole["train_examples"] == 27  # half of the 54 training pairs
    a, _ = load_checkpoint(tmp_path / "whole" / "latest.pt", fmt=FORMAT)
    b, _ = load_checkpoint(tmp_path / "split" / "latest.pt", fmt=FORMAT)
    for k, v in a["model"].items():
        assert torch.equal(b["model"][k], v), k


def test_task_scores_match_the_official_metrics(small_corpus):  # noqa: F811
    from pretraining.tasks import TASKS
    from vqa.metric import vqa_accuracy

    _, corpus, _ = small_corpus
    vqa = TASKS.get("vqa")
    val = vqa.load(corpus / "vqa", "val2014")
    predicted = [ex.record.multiple_choice_answer for ex in val]
    anns = [{"question_id": ex.example_id, "question_type": ex.record.question_type,
             "answer_type": ex.record.answer_type, "answers": ex.record.answers} for ex in val]
    assert vqa.score(val, predicted)["overall"] == vqa_accuracy(anns, dict(zip([e.example_id for e in val], predicted)))["overall"]
    gqa = TASKS.get("gqa")
    gval = gqa.load(corpus / "gqa", "val")
    right = [max(ex.labels, key=ex.labels.get) for ex in gval]
    assert gqa.score(gval, right)["overall"] == 100.0
    assert gqa.score(gval, ["?"] * len(gval))["overall"] == 0.0
    ve = TASKS.get("snli_ve")
    vval = ve.load(corpus / "snli_ve", "dev")
    assert {ex.image_id for ex in vval} <= {str(i) for i in range(1, 100)}  # Flikr30kID file names -> image keys
    all_entail = ve.score(vval, ["entailment"] * len(vval))
    share = sum("entailment" in ex.labels for ex in vval) / len(vval)
    assert all_entail["overall"] == round(100 * share, 2) and all_entail["perClass"]["entailment"] == 100.0
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 3.0]])
    target = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]])
    assert torch.isclose(ve.loss(logits, target), torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])))
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum") / 2
    assert torch.isclose(vqa.loss(logits, target), bce)


def test_finetune_needs_an_init(small_corpus, tmp_path):  # noqa: F811
    from training.config import ConfigMismatchError

    from pretraining.finetune import main

    with pytest.raises(ConfigMismatchError, match="--init"):
        main(["--task", "vqa", "--out", str(tmp_path / "x"), "--no-progress"])


def test_transfer_check_compares_both_starts_on_one_subset(small_corpus, pretrained, tmp_path):  # noqa: F811
    from pretraining.transfer import main

    _, corpus, _ = small_corpus
    out = main(["--out", str(tmp_path / "t"), "--init", str(pretrained), "--corpus", str(corpus), "--fraction", "0.5",
                "--seeds", "0", "--epochs", "1", "--batch-size", "16", "--", "--min-answer-count", "1", "--workers", "0"])
    row = out["rows"][0]
    assert row["train_examples"] == 33  # half of the 66 training questions, for both starts
    assert set(row) == {"seed", "pretrained", "scratch", "train_examples"}
    for start in ("pretrained", "scratch"):
        assert 0 <= row[start]["overall"] <= 100 and set(row[start]["perAnswerType"]) == {"yes/no", "number", "other"}
    table = (tmp_path / "t" / "table.md").read_text()
    assert "| 0 | pre-trained |" in table and "| 0 | from scratch |" in table and "mean" in table
