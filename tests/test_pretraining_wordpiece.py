"""WordPiece for pre-training: BERT vocab.txt semantics, deterministic training, batch encoding, run-folder vocabulary."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pretraining.wordpiece import SPECIAL_TOKENS, WordPiece, load_or_train, read_vocab
from vln.errors import DataFormatError

ROOT = Path(__file__).resolve().parents[1]
BERT_LIKE = list(SPECIAL_TOKENS) + ["a", "man", "on", "horse", "un", "##aff", "##able", "##s", ".", ",", "?",
                                    "cafe", "the", "is"]


def corpus_texts() -> list[str]:
    """Sentences with many equal word counts: merges tie, which is where the library's trainer varies."""
    colours = ["red", "green", "blue", "yellow", "purple", "orange"]
    things = ["chair", "table", "lamp", "sofa", "mirror", "plant", "towel", "stool"]
    rooms = ["kitchen", "bedroom", "hallway", "bathroom"]
    return [f"A {c} {t} in the {r}." for c, t, r in itertools.product(colours, things, rooms)] + \
        [f"How many {t}s are in the {r}?" for t, r in itertools.product(things, rooms)]


@pytest.fixture
def bert_vocab(tmp_path) -> Path:
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(BERT_LIKE) + "\n", encoding="utf-8")
    return path


def test_user_vocab_has_bert_uncased_semantics(bert_vocab):
    wp = WordPiece.from_vocab_file(bert_vocab, max_length=8)
    # lower-cased, accents stripped, punctuation split, greedy longest-match word pieces, unknown word -> [UNK]
    assert wp.tokens("Unaffable CAFÉ, horses?") == ["un", "##aff", "##able", "cafe", ",", "horse", "##s", "?"]
    assert wp.tokens("zebra") == ["[UNK]"]
    assert (wp.pad_id, wp.unk_id, wp.cls_id, wp.sep_id, wp.mask_id) == (0, 1, 2, 3, 4)
    assert wp.special_ids == {0, 1, 2, 3, 4}
    assert wp.vocab_size == len(BERT_LIKE)


def test_encode_pads_truncates_and_masks(bert_vocab):
    wp = WordPiece.from_vocab_file(bert_vocab, max_length=6)
    ids, mask = wp.encode(["A man on a horse.", "a man", "Unaffable horses on a man, the man is a horse", ""])
    v = {t: i for i, t in enumerate(BERT_LIKE)}
    assert ids.shape == mask.shape == (4, 6) and ids.dtype == mask.dtype
    assert ids[0].tolist() == [v["[CLS]"], v["a"], v["man"], v["on"], v["a"], v["[SEP]"]]  # truncated, SEP kept
    assert ids[1].tolist() == [v["[CLS]"], v["a"], v["man"], v["[SEP]"], v["[PAD]"], v["[PAD]"]]
    assert mask[1].tolist() == [1, 1, 1, 1, 0, 0]
    assert ids[2].tolist() == [v["[CLS]"], v["un"], v["##aff"], v["##able"], v["horse"], v["[SEP]"]]
    assert ids[3].tolist()[:3] == [v["[CLS]"], v["[SEP]"], v["[PAD]"]] and mask[3].sum() == 2
    assert wp.decode(ids[1]) == "a man"
    with pytest.raises(TypeError):
        wp.encode("a man")


def test_trained_vocabulary_covers_the_corpus_and_saves(tmp_path):
    texts = corpus_texts()
    wp = WordPiece.train(texts, min_frequency=1)
    assert wp.vocab[:5] == list(SPECIAL_TOKENS)
    for text in texts:
        assert "[UNK]" not in wp.tokens(text)
    assert "kitchen" in wp.vocab and "bedroom" in wp.vocab  # frequent words become one piece
    wp.save(tmp_path / "vocab.txt")
    again = WordPiece.from_vocab_file(tmp_path / "vocab.txt")
    assert again.vocab == wp.vocab
    assert again.encode(texts[:3])[0].tolist() == wp.encode(texts[:3])[0].tolist()


_TRAIN_IN_PROCESS = """
import sys
sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
from test_pretraining_wordpiece import corpus_texts
from pretraining.wordpiece import WordPiece
WordPiece.train(corpus_texts(), vocab_size={size}, min_frequency=1).save(sys.argv[1])
"""


@pytest.mark.parametrize("size", [60, 30522])
def test_training_is_byte_identical_across_processes(tmp_path, size):
    """Fresh processes get fresh hash seeds (Python's and the Rust library's): the vocab.txt must not change."""
    script = _TRAIN_IN_PROCESS.format(root=str(ROOT), tests=str(ROOT / "tests"), size=size)
    outs = []
    for seed in range(3):
        out = tmp_path / f"vocab{seed}.txt"
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, env=env, timeout=60)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == outs[2]
    assert len(outs[0].splitlines()) <= size


def test_load_or_train_keeps_the_run_vocabulary(tmp_path, bert_vocab):
    run = tmp_path / "run"
    wp = load_or_train(run, corpus_texts(), min_frequency=1)
    saved = (run / "vocab.txt").read_bytes()
    assert read_vocab(run / "vocab.txt") == wp.vocab
    # a resumed run reads the saved file, whatever texts it is given
    assert load_or_train(run, ["other words entirely"]).vocab == wp.vocab
    assert (run / "vocab.txt").read_bytes() == saved
    # --vocab FILE: copied into a new run; refused by a run made with another vocabulary
    user = load_or_train(tmp_path / "run2", vocab=bert_vocab)
    assert (tmp_path / "run2" / "vocab.txt").read_text() == bert_vocab.read_text()
    assert user.vocab == BERT_LIKE
    with pytest.raises(ValueError, match="another vocabulary"):
        load_or_train(run, vocab=bert_vocab)
    with pytest.raises(ValueError, match="no texts"):
        load_or_train(tmp_path / "run3")


@pytest.mark.parametrize("lines, match", [
    (BERT_LIKE[:4] + BERT_LIKE[5:], r"\['\[MASK\]'\] are missing"),
    (BERT_LIKE + ["man"], r"line 20, field 'token': 'man' repeats line 7"),
    (BERT_LIKE[:6] + [" "] + BERT_LIKE[6:], r"line 7, field 'token': is blank"),
])
def test_malformed_vocab_names_file_line_and_problem(tmp_path, lines, match):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataFormatError, match=match) as e:
        WordPiece.from_vocab_file(path)
    assert str(path) in str(e.value)
    with pytest.raises(FileNotFoundError, match="--vocab"):
        WordPiece.from_vocab_file(tmp_path / "nope.txt")
