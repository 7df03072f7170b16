"""VQA readers, answer vocabulary, soft targets, question tokens and the grid dataset."""
import json

import numpy as np
import pytest

from features.image_store import GridRecord, ImageGridStore
from vln.errors import DataFormatError
from vqa.answers import AnswerVocab, answer_scores, soft_score
from vqa.data import image_key, load_gqa, load_lxmert, load_vqa2, train_answers
from vqa.dataset import VQADataset, collate, pool_record, shuffled_images
from vqa.tokens import QuestionTokenizer, split_question
from vqa_helpers import small_corpus, small_world, vqa_corpus  # noqa: F401 - fixtures


def recs(*texts):
    return [{"answer": t, "answer_confidence": "yes", "answer_id": i} for i, t in enumerate(texts, 1)]


def test_soft_scores_from_annotator_counts():
    assert [soft_score(k) for k in range(6)] == [0.0, 0.3, 0.6, 0.9, 1.0, 1.0]
    scores = answer_scores(recs(*["Two"] * 3, "2", "yes", "yes.", *["no"] * 4))
    assert scores == {"2": 1.0, "yes": 0.6, "no": 1.0}           # normalised as predictions are
    exact = answer_scores(recs("cat", "cat", "dog", "bird", "cow", "pig", "fox", "owl", "ant", "emu"), exact=True)
    assert exact["cat"] == pytest.approx(0.6) and exact["dog"] == pytest.approx(0.3)


def test_answer_vocab_counts_and_files(tmp_path):
    vocab = AnswerVocab.from_counts(["yes"] * 3 + ["No"] * 3 + ["two"] * 2 + ["cat"], min_count=2)
    assert vocab.answers == ["no", "yes", "2"]                   # by count, then alphabetically
    vocab.save(tmp_path / "a.json")
    assert AnswerVocab.from_file(tmp_path / "a.json").answers == vocab.answers
    (tmp_path / "list.json").write_text(json.dumps(["a", "b"]))
    assert AnswerVocab.from_file(tmp_path / "list.json").ans2label == {"a": 0, "b": 1}
    (tmp_path / "bad.json").write_text(json.dumps({"a": 0, "b": 2}))
    with pytest.raises(DataFormatError, match=r"bad.json.*answer 'b'.*label"):
        AnswerVocab.from_file(tmp_path / "bad.json")
    assert vocab.targets({"yes": 0.6, "zebra": 1.0}) == {1: 0.6}


def test_vqa2_reader_joins_questions_and_soft_labels(vqa_corpus):
    corpus, _ = vqa_corpus
    train = load_vqa2(corpus / "vqa", "train2014")
    assert train and all(len(ex.answers) == 10 and ex.labels and ex.answer_type for ex in train)
    ex = train[0]
    assert ex.labels == answer_scores(ex.answers)
    assert max(ex.labels.values()) == 1.0 or len(ex.labels) > 1
    assert train_answers(train)[0] == ex.multiple_choice_answer


def test_lxmert_and_gqa_readers(vqa_corpus, tmp_path):
    corpus, _ = vqa_corpus
    gqa = load_gqa(corpus / "gqa" / "train_balanced_questions.json")
    assert gqa and all(len(ex.labels) == 1 and list(ex.labels.values()) == [1.0] for ex in gqa)
    lx = [{"question_id": 5, "img_id": "COCO_val2014_000000000042", "sent": "what?", "label": {"red": 0.6}},
          {"question_id": 6, "img_id": "n123", "sent": "where?"}]
    (tmp_path / "lx.json").write_text(json.dumps(lx))
    a, b = load_lxmert(tmp_path / "lx.json")
    assert (a.image_id, a.labels, b.image_id, b.labels) == ("42", {"red": 0.6}, "n123", {})
    assert load_gqa(tmp_path / "lx.json")[0].question == "what?"
    lx[1]["label"] = {"x": 3}
    (tmp_path / "lx.json").write_text(json.dumps(lx))
    with pytest.raises(DataFormatError, match=r"lx.json.*question_id 6.*label"):
        load_lxmert(tmp_path / "lx.json")
    (tmp_path / "g.json").write_text(json.dumps({"q1": {"imageId": "n1"}}))
    with pytest.raises(DataFormatError, match=r"g.json.*question q1.*question"):
        load_gqa(tmp_path / "g.json")


def test_malformed_vqa_annotation_names_file_record_field(vqa_corpus, tmp_path):
    corpus, _ = vqa_corpus
    for name in ("v2_OpenEnded_mscoco_val2014_questions.json", "v2_mscoco_val2014_annotations.json"):
        (tmp_path / name).write_bytes((corpus / "vqa" / name).read_bytes())
    data = json.loads((tmp_path / "v2_mscoco_val2014_annotations.json").read_text())
    qid = data["annotations"][1]["question_id"]
    del data["annotations"][1]["answers"][3]["answer_id"]
    (tmp_path / "v2_mscoco_val2014_annotations.json").write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=rf"annotations.json.*question_id {qid}.*answer_id"):
        load_vqa2(tmp_path, "val2014")


def test_image_keys_and_question_tokens(tmp_path):
    assert image_key("COCO_train2014_000000458752") == "458752" and image_key(7) == "7"
    assert split_question("What's the man-made (red/blue) thing?") == ["whats", "the", "man", "made", "red", "blue", "thing"]
    tok = QuestionTokenizer.build(["is there a cat?", "is there a dog"], max_tokens=5)
    assert tok.words[:2] == ["<PAD>", "<UNK>"] and tok.encode("Is there a cow here at all").tolist() == [2, 3, 4, 1, 1]
    assert tok.encode("cat").tolist() == [5, 0, 0, 0, 0]
    tok.save(tmp_path / "w.json")
    assert QuestionTokenizer.load(tmp_path / "w.json").words == tok.words


def test_dataset_batches_padded_grids_with_masks(vqa_corpus):
    corpus, store_path = vqa_corpus
    train = load_vqa2(corpus / "vqa", "train2014")[:5]
    store = ImageGridStore(store_path)
    tok = QuestionTokenizer.build(ex.question for ex in train)
    answers = AnswerVocab.from_counts(train_answers(train), 1)
    ds = VQADataset(train, store, tok, answers)
    b = collate([ds[i] for i in range(5)])
    h, w = store.grid_shape(train[0].image_id)
    assert b["grid"].shape == (5, h, w, store.meta["channels"]) and b["mask"].shape == (5, h, w)
    assert b["tokens"].shape == (5, 14) and b["target"].shape == (5, len(answers))
    assert b["mask"].all() and 0 < b["pos"].min() and b["pos"].max() < 1
    assert float(b["target"][0].max()) == max(answers.targets(train[0].labels).values())
    np.testing.assert_allclose(b["grid"][0].numpy(), store.get(train[0].image_id), rtol=0, atol=0)
    with pytest.raises(KeyError, match="not in the grid store"):
        VQADataset([type(train[0])(1, "nope", "q")], store, tok, answers)
    store.close()


def test_fp16_batches_reach_the_model_as_float32_and_npy_folders_serve_the_same_grids(vqa_corpus, tmp_path):
    """The fp16 store is served without a host-side cast; a per-image .npy folder (the loader
    benchmark's baseline) gives the same float32 batch."""
    import torch

    from features.grid_formats import NpyDirGrids, write_npy_dir
    from vqa.predict import model_inputs

    corpus, store_path = vqa_corpus
    train = load_vqa2(corpus / "vqa", "train2014")[:4]
    tok = QuestionTokenizer.build(ex.question for ex in train)
    answers = AnswerVocab.from_counts(train_answers(train), 1)
    with ImageGridStore(store_path) as store:
        ids = sorted({ex.image_id for ex in train})
        npy_dir = write_npy_dir(tmp_path / "att", ((i, GridRecord(store.get(i))) for i in ids), {})
        half = collate([VQADataset(train, store, tok, answers)[i] for i in range(4)])
    with NpyDirGrids(npy_dir) as npy:
        full = collate([VQADataset(train, npy, tok, answers, dtype=np.float32)[i] for i in range(4)])
    assert half["grid"].dtype == torch.float16 and full["grid"].dtype == torch.float32
    _, grid, _, _ = model_inputs(half, torch.device("cpu"))
    assert grid.dtype == torch.float32 and torch.equal(grid, full["grid"])
    _, zero, _, _ = model_inputs(half, torch.device("cpu"), visual="zero")
    assert zero.dtype == torch.float32 and not zero.any()


def test_pool_record_averages_valid_cells():
    grid = np.arange(3 * 3 * 1, dtype=np.float32).reshape(3, 3, 1)
    mask = np.ones((3, 3), bool)
    mask[0, 0] = False
    out = pool_record(GridRecord(grid, None, mask), 2)
    assert out.grid.shape == (2, 2, 1) and out.mask.all()
    assert out.grid[0, 0, 0] == pytest.approx((1 + 3 + 4) / 3) and out.grid[1, 1, 0] == 8


def test_shuffled_images_is_a_seeded_derangement():
    m = shuffled_images([str(i) for i in range(10)], seed=1)
    assert sorted(m) == sorted(m.values()) and all(k != v for k, v in m.items())
    assert m == shuffled_images([str(i) for i in range(10)], seed=1)
