"""The zero-shot CLIP VQA probe (``vqa/zeroshot.py``, ``scripts/zeroshot_vqa.py``) on small random CLIPs:
text encoding equal to open_clip's, both prompt modes, the cache equal to re-encoding, the official
accuracy of a constructed model whose right answer must win, the synthetic corpus end to end."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from clip_text_helpers import load, tiny_text_clips, write_text_clip  # noqa: F401 - fixture
from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures

ANSWERS = ["red", "blue", "2", "yes"]


def test_text_encoding_is_open_clips_on_cut_batches_and_assembled_tokens(tiny_text_clips):
    clip = load(tiny_text_clips["rn"])
    tokenizer = clip.tokens.tokenizer
    texts = ["question: what's the colour of the sofa? answer: red", "red", "don't", "2",
             "question: how many chairs are there in the living room next to the big window? answer: 12",
             "word " * 40, "café au lait, 3.5 cm!"]
    ours = clip.encode_texts(texts, batch_size=3)  # batches cut to their longest; one text is truncated
    ref = clip.clip.encode_text(tokenizer(texts), normalize=True)
    assert ours.shape == (len(texts), 64)
    torch.testing.assert_close(ours, ref, atol=2e-6, rtol=0)
    alone = ["is it 100!%", "no!$"]  # "!" before "%" is token id 0, the padding id: a batch of one keeps its end token
    ids = tokenizer(alone[:1])[0]
    assert (ids[:int(ids.argmax())] == 0).any()
    torch.testing.assert_close(clip.encode_texts(alone, batch_size=1),
                               clip.clip.encode_text(tokenizer(alone), normalize=True), atol=2e-6, rtol=0)
    # a prompt from its memoised pieces: the same ids as tokenizing the whole prompt
    from vqa.zeroshot import PROMPT, prompt_pieces

    pairs = [("what's on the table?", "don't know"), ("is it 2:30?", "yes"), ("how many?", "10"),
             ("a question " * 20 + "?", "blue"), ("Où est-il?", "à gauche")]
    pieces = [prompt_pieces(q, a) for q, a in pairs]
    assert [" ".join(p) for p in pieces] == [PROMPT.format(question=q, answer=a) for q, a in pairs]
    assert torch.equal(clip.tokens.batch(pieces), tokenizer([" ".join(p) for p in pieces]))


def test_scores_in_both_modes_and_the_cache_gives_the_uncached_scores(tiny_text_clips):
    from vqa.zeroshot import AnswerScorer

    clip = load(tiny_text_clips["rn"])
    images = torch.nn.functional.normalize(torch.randn(5, 64, generator=torch.Generator().manual_seed(0)), dim=-1)
    questions = ["what color is it?", "how many chairs?", "what color is it?", "is it red?", "how many chairs?"]
    cached = AnswerScorer(clip, ANSWERS, batch_size=3)
    plain = cached.scores(images, questions, "no_prompt")
    prompted = cached.scores(images, questions, "prompt")
    assert plain.shape == prompted.shape == (5, len(ANSWERS))
    # no prompt: every question sees the same answer embeddings, encoded once
    torch.testing.assert_close(plain, images @ clip.encode_texts(ANSWERS).T)
    # prompt: the embeddings of "question: Q answer: A", encoded once per distinct question text
    torch.testing.assert_close(prompted[1], clip.encode_texts([f"question: how many chairs? answer: {a}"
                                                               for a in ANSWERS]) @ images[1])
    assert cached.encoded == len(ANSWERS) * (1 + 3)
    assert not torch.allclose(plain, prompted)
    uncached = AnswerScorer(clip, ANSWERS, batch_size=3, cache=False)
    for mode, scores in (("no_prompt", plain), ("prompt", prompted)):
        again = uncached.scores(images, questions, mode)
        torch.testing.assert_close(again, scores, atol=1e-6, rtol=0)
        assert torch.equal(again.argmax(1), scores.argmax(1))
    assert uncached.encoded == 2 * len(ANSWERS) * len(questions)  # re-encoded for every question
    assert cached.scores(images, questions, "prompt").tolist() == prompted.tolist() and cached.encoded == 16


def test_uniform_chance_by_hand():
    from vqa.data import QAExample
    from vqa.zeroshot import uniform_chance

    def ex(qid, answers):
        return QAExample(qid, "1", "q", answers=[{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                                                 for i, a in enumerate(answers)])

    examples = [ex(1, ["red"] * 10), ex(2, ["2"] * 10), ex(3, ["red"] * 2 + ["blue"] * 8), ex(4, ["green"] * 10)]
    # (1 + 1 + (0.6 + 1) + 0) / 4 answers / 4 questions
    assert uniform_chance(examples, ANSWERS) == pytest.approx(100 * (0.25 + 0.25 + 0.4 + 0) / 4, abs=0.005)


def _answers(*counts):
    out = []
    for answer, n in counts:
        out += [answer] * n
    return [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1} for i, a in enumerate(out)]


def _constructed_case(tmp_path):
    """Two images, three questions (hand-scored below) and a vocabulary file."""
    from PIL import Image

    from vlcorpus.vqa_format import vqa_files

    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    for i in (1, 2):
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), dtype=np.uint8)).save(images / f"COCO_val2014_{i:012d}.png")
    qs = [(1, 1, "what color is the sofa?", "what color is the", "other", _answers(("red", 10))),
          (2, 1, "how many chairs are there?", "how many", "number", _answers(("2", 10))),
          (3, 2, "what color is the chair?", "what color is the", "other", _answers(("red", 2), ("blue", 8)))]
    files = vqa_files("val2014", [{"image_id": im, "question": q, "question_id": qid} for qid, im, q, *_ in qs],
                      [{"question_id": qid, "image_id": im, "question_type": qt, "answer_type": at,
                        "multiple_choice_answer": ans[0]["answer"], "answers": ans} for qid, im, _, qt, at, ans in qs])
    paths = {}
    for name, data in files.items():
        (tmp_path / name).write_text(json.dumps(data))
        paths["questions" if "questions" in name else "annotations"] = tmp_path / name
    (tmp_path / "ans2label.json").write_text(json.dumps({a: i for i, a in enumerate(ANSWERS)}))
    return images, paths


def _image_tower_outputs(text: str):
    """An edit making the ResNet's attention pool output the text embedding of ``text`` for any image."""
    def edit(model):
        import open_clip

        tokens = open_clip.get_tokenizer("RN50-quickgelu", context_length=model.context_length)([text])
        with torch.no_grad():
            target = model.encode_text(tokens, normalize=True)[0]
            model.visual.attnpool.c_proj.weight.zero_()
            model.visual.attnpool.c_proj.bias.copy_(target)
    return edit


@pytest.mark.parametrize("mode", ["no_prompt", "prompt"])
def test_a_constructed_model_picks_the_right_answer_and_is_scored_officially(tmp_path, mode):
    from scripts.zeroshot_vqa import main
    from vqa.evaluate import score_files

    images, paths = _constructed_case(tmp_path)
    # every image embeds as the text of "red" (alone, or in question 1's prompt): cosine 1, it must win
    text = "red" if mode == "no_prompt" else "question: what color is the sofa? answer: red"
    files = write_text_clip(tmp_path / "w", "rn", state_edit=_image_tower_outputs(text))
    out = main(["--encoder", str(files["spec"]), "--weights", str(files["weights"]), "--questions",
                str(paths["questions"]), "--annotations", str(paths["annotations"]), "--images", str(images),
                "--ans2label", str(tmp_path / "ans2label.json"), "--modes", mode, "--out", str(tmp_path / "run"),
                "--workers", "0"])
    results = json.loads((tmp_path / "run" / f"results_{mode}.json").read_text())
    assert sorted(r["question_id"] for r in results) == [1, 2, 3]
    answered = {r["question_id"]: r["answer"] for r in results}
    assert answered[1] == "red"
    official = score_files(tmp_path / "run" / f"results_{mode}.json", paths["annotations"], paths["questions"])
    assert out[mode] == {k: official[k] for k in ("overall", "perQuestionType", "perAnswerType")}
    if mode == "no_prompt":  # "red" for all: 100, 0 and (2 of 10 annotators) 60
        assert answered == {1: "red", 2: "red", 3: "red"}
        assert out[mode]["overall"] == 53.33
        assert out[mode]["perAnswerType"] == {"other": 80.0, "number": 0.0}
    assert out["encoder"]["random"] is False and out["answers"] == 4 and out["questions"] == 3
    assert out["chance"] == 30.0  # (1 + 1 + 1.6) / 4 answers / 3 questions


def test_synthetic_corpus_end_to_end_with_random_weights(small_corpus, tiny_text_clips, tmp_path):  # noqa: F811
    from scripts.zeroshot_vqa import main
    from vqa.evaluate import score_files

    _, corpus, _ = small_corpus
    out = main(["--encoder", str(tiny_text_clips["vit"]["spec"]), "--weights", "random", "--data-dir", str(corpus),
                "--min-answer-count", "2", "--out", str(tmp_path), "--workers", "0"])
    assert out["encoder"]["random"] is True and out["questions"] > 0
    assert out["texts_encoded"] == out["answers"] * (1 + len({q["question"] for q in json.loads(
        (corpus / "vqa" / "v2_OpenEnded_mscoco_val2014_questions.json").read_text())["questions"]}))
    for mode in ("prompt", "no_prompt"):
        assert set(out[mode]) == {"overall", "perQuestionType", "perAnswerType"}
        assert set(out[mode]["perAnswerType"]) <= {"yes/no", "number", "other"}
        official = score_files(tmp_path / f"results_{mode}.json",
                               corpus / "vqa" / "v2_mscoco_val2014_annotations.json")
        assert official["overall"] == out[mode]["overall"]
    assert json.loads((tmp_path / "scores.json").read_text())["chance"] == out["chance"]


def test_offline_without_weights_is_the_weights_error_never_a_random_model(tmp_path, monkeypatch):
    from features.encoders import WeightsUnavailableError, get_clip_model
    from features.clip_text import TextTowerError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("CLIPVIL_WEIGHTS_DIR", raising=False)
    with pytest.raises(WeightsUnavailableError, match=r"offline and no local 'RN50x4\.pt'.*--weights PATH"):
        get_clip_model("clip_r50x4", device="cpu")
    with pytest.raises(TextTowerError, match="imagenet_r152.*has no text tower"):
        get_clip_model("imagenet_r152", device="cpu")


def test_a_text_tower_the_tokenizer_cannot_feed_is_refused(tmp_path):
    from clip_archives import tiny_clip_spec
    from features.clip_text import TextTowerError
    from features.encoders import get_clip_model

    spec = tmp_path / "tiny.json"
    spec.write_text(json.dumps(tiny_clip_spec("rn").to_dict()))  # a 64-token text vocabulary
    with pytest.raises(TextTowerError, match="embeds 64 token ids but open_clip's tokenizer"):
        get_clip_model(str(spec), weights="random", device="cpu")


def test_bad_inputs_are_one_error_naming_the_file(tmp_path, tiny_text_clips):
    from scripts.zeroshot_vqa import main
    from vln.errors import DataFormatError, VLNError

    images, paths = _constructed_case(tmp_path)
    base = ["--encoder", str(tiny_text_clips["rn"]["spec"]), "--weights", "random", "--questions",
            str(paths["questions"]), "--annotations", str(paths["annotations"]), "--images", str(images), "--workers", "1"]
    with pytest.raises(VLNError, match=r"no answer is seen 11 times.*--min-answer-count 11"):
        main(base + ["--train-annotations", str(paths["annotations"]), "--min-answer-count", "11"])
    (images / "COCO_val2014_000000000002.png").write_bytes(b"not an image")  # decoded in a worker process
    with pytest.raises(VLNError, match=r"COCO_val2014_000000000002\.png: cannot be decoded as an image"):
        main(base + ["--ans2label", str(tmp_path / "ans2label.json")])
    (images / "COCO_val2014_000000000002.png").unlink()
    with pytest.raises(DataFormatError, match=r"record question_id 3, field 'image_id': image 2 is not in"):
        main(base + ["--ans2label", str(tmp_path / "ans2label.json")])
