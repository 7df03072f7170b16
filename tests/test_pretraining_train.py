"""scripts/pretrain.py end to end on a tiny corpus: run folder, TensorBoard tags, exact resume."""
import json

import pytest
import torch

from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures


def tiny_args(corpus, clip, out, *extra):
    return ["--encoder", str(clip["spec"]), "--weights", str(clip["safetensors"]), "--data", "synthetic",
            "--data-dir", str(corpus), "--out", str(out), "--size", "tiny", "--canvas", "64x96", "--batch-size", "8",
            "--num-cells", "4", "--vocab-size", "200", "--min-answer-count", "1", "--qa-from-epoch", "0",
            "--epochs", "2", "--dropout", "0", "--workers", "0", "--threads", "1", "--no-progress",
            "--eval-pairs", "16", "--log-every", "1", *extra]


def test_pretrain_writes_a_run_and_resumes_exactly(small_corpus, tiny_clip_rn, tmp_path):  # noqa: F811
    from pretraining.train import FORMAT, main
    from training.checkpoint import load_checkpoint

    _, corpus, _ = small_corpus
    whole = main(tiny_args(corpus, tiny_clip_rn, tmp_path / "whole", "--steps", "4"))
    assert whole["step"] == 4 and 0 <= whole["val"]["itm_acc"] <= 1 and whole["val"]["masked"] > 0
    run = tmp_path / "whole"
    for name in ("params.json", "vocab.txt", "answers.json", "latest.pt", "checkpoint.pt"):
        assert (run / name).is_file(), name
    params = json.loads((run / "params.json").read_text())
    assert params["size"] == "tiny" and params["batch_size"] == 8

    main(tiny_args(corpus, tiny_clip_rn, tmp_path / "split", "--steps", "2", "--per-device-batch", "4"))
    main(tiny_args(corpus, tiny_clip_rn, tmp_path / "split", "--steps", "4", "--per-device-batch", "8"))  # resumed, no accumulation
    a, meta_a = load_checkpoint(run / "latest.pt", fmt=FORMAT)
    b, meta_b = load_checkpoint(tmp_path / "split" / "latest.pt", fmt=FORMAT)
    assert meta_a["step"] == meta_b["step"] == 4
    for k, v in a["model"].items():
        torch.testing.assert_close(b["model"][k], v, rtol=1e-5, atol=1e-6, msg=k)


def test_caption_only_pairs_pretrain_without_an_answer_table(small_corpus, tiny_clip_rn, tmp_path):  # noqa: F811
    """LXMERT files with captions only (empty labelf, as for Conceptual Captions) pre-train with MLM and ITM
    and no QA head; the held-out ITM accuracy is reported per source of the sentence shown."""
    from pretraining.train import FORMAT, main
    from training.checkpoint import load_checkpoint

    _, corpus, _ = small_corpus
    for name in ("mscoco_train.json", "mscoco_minival.json"):
        records = json.loads((corpus / "lxmert" / name).read_text())
        kept = [{"img_id": r["img_id"], "sentf": {"mscoco": r["sentf"]["mscoco"]}, "labelf": {}}
                for r in records if "mscoco" in r["sentf"]]
        (tmp_path / name).write_text(json.dumps(kept))
    args = tiny_args(corpus, tiny_clip_rn, tmp_path / "run", "--steps", "2")
    args[args.index("--data") + 1] = "lxmert"
    args[args.index("--data-dir") + 1] = str(tmp_path)
    result = main([*args, "--images", str(corpus / "images")])
    run = tmp_path / "run"
    assert json.loads((run / "answers.json").read_text()) in ({}, [])
    state, meta = load_checkpoint(run / "checkpoint.pt", fmt=FORMAT)
    assert meta["num_answers"] == 0 and not any(k.startswith("qa_head") for k in state["model"])
    val = result["val"]
    assert val["itm_acc/mscoco"] == val["itm_acc"] and not any(k.startswith("itm_acc/vqa") for k in val)
    assert val["qa_acc"] != val["qa_acc"]  # NaN: nothing to score


def test_held_out_itm_accuracy_per_source_and_source_selection(small_corpus, tiny_clip_rn, tmp_path):  # noqa: F811
    """The synthetic corpus's captions and questions: the whole ITM accuracy lies between the per-source ones;
    ``--sources`` selects the sentences trained and evaluated on."""
    from pretraining.train import main

    _, corpus, _ = small_corpus
    val = main(tiny_args(corpus, tiny_clip_rn, tmp_path / "run", "--steps", "1", "--eval-pairs", "0"))["val"]
    shown = {k: v for k, v in val.items() if k.startswith("itm_acc/")}
    assert set(shown) == {"itm_acc/mscoco", "itm_acc/vqa"}
    assert min(shown.values()) <= val["itm_acc"] <= max(shown.values())
    # --sources keeps the captions: no question shown, no answer table
    captions = main(tiny_args(corpus, tiny_clip_rn, tmp_path / "captions", "--steps", "1", "--sources", "mscoco"))
    assert [k for k in captions["val"] if k.startswith("itm_acc/")] == ["itm_acc/mscoco"]
    assert json.loads((tmp_path / "captions" / "answers.json").read_text()) in ({}, [])
    from vln.errors import DataFormatError

    with pytest.raises(DataFormatError, match=r"mscoco_train.json, field 'sentf': hold no sentence of the sources \['captions'\]"):
        main(tiny_args(corpus, tiny_clip_rn, tmp_path / "none", "--steps", "1", "--sources", "captions"))


def test_pretrain_input_errors_are_one_line(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from pretraining.train import main
    from training.config import ConfigMismatchError

    script = Path(__file__).resolve().parents[1] / "scripts" / "pretrain.py"
    proc = subprocess.run([sys.executable, str(script), "--out", str(tmp_path / "run"), "--data", "lxmert",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1].startswith("error: ") and "needs --images DIR" in proc.stderr
    with pytest.raises(ConfigMismatchError, match="not a multiple of --per-device-batch 4"):
        main(["--out", str(tmp_path / "run"), "--batch-size", "10", "--per-device-batch", "4"])


@pytest.mark.slow
def test_small_budget_learning_check_beats_the_unigram_baseline(tmp_path):
    """scripts/pretrain_learning_check.py at a small budget (tiny Transformer, 4 epochs of a 10-house
    corpus, about 20 s): held-out masked-token accuracy above always predicting the most frequent
    token, both measured in the same run on the val houses' pairs."""
    from synthetic_helpers import SMALL_PATHS

    from pretraining.learning_check import main
    from vlcorpus import make_vl_corpus
    from vln.synthetic import generate_world

    generate_world(tmp_path / "world", houses=10, seed=7, face_size=32, paths_per_house=SMALL_PATHS)
    make_vl_corpus(tmp_path / "world", tmp_path / "vl", seed=3, image_size="tiny", viewpoints_per_house=6)
    result = main(["--out", str(tmp_path / "check"), "--data-dir", str(tmp_path / "vl"), "--epochs", "4", "--",
                   "--size", "tiny", "--batch-size", "16", "--lr", "1e-3", "--no-progress"])
    val = result["val"]
    assert val["pairs"] > 100 and val["masked"] > 200, val
    assert val["mlm_acc"] > val["mlm_unigram_acc"] + 0.03, val
    assert 0.0 <= val["itm_acc"] <= 1.0 and (tmp_path / "check" / "scores.json").is_file()
