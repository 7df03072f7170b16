"""Tokenisers: EnvDrop-compatible R2R splitting/vocabulary/encoding and the multilingual fallback."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

from vln.tokenizers import (BASE_VOCAB, MultilingualTokenizer, R2RTokenizer, VocabTokenizer, detect_language,
                            read_vocab, split_words, write_vocab)

SENTENCES = [
    "Walk down the stairs. Turn left at the bottom!",
    "Walk past the couch and turn left.",
    "Turn right, walk into the kitchen and stop...",
    "Go up the stairs; wait at the top.",
    "walk LEFT.",
]


@pytest.mark.parametrize(
    "sentence, words",
    [
        ("Walk down the stairs. ", ["walk", "down", "the", "stairs", "."]),
        ("Turn LEFT!? Stop...", ["turn", "left", "!", "?", "stop", "..."]),
        ("Don't stop, go!", ["don", "'", "t", "stop", ",", "go", "!"]),
        ("wait . . then go", ["wait", ". .", "then", "go"]),  # EnvDrop keeps '. .' (a space is not punctuation)
        ("the 2nd door (left)", ["the", "2nd", "door", "(", "left", ")"]),
        ("  ", []),
    ],
)
def test_r2r_split_matches_envdrop(sentence, words):
    assert R2RTokenizer.split_sentence(sentence) == words
    assert R2RTokenizer().split(sentence) == words


def test_build_vocab_frequency_threshold_and_order():
    vocab = R2RTokenizer().build_vocab(SENTENCES, min_count=2)
    # counts: the 7, . 4, walk 4, turn 3, left 3, stairs 2, at 2, and 2 (ties keep first-seen order)
    assert vocab == list(BASE_VOCAB) + ["the", "walk", ".", "turn", "left", "stairs", "at", "and"]
    assert R2RTokenizer().build_vocab(SENTENCES, min_count=5) == list(BASE_VOCAB) + ["the"]
    assert R2RTokenizer().build_vocab(SENTENCES, min_count=2, start_vocab=["<PAD>", "<UNK>", "<EOS>", "the"])[3:5] == [
        "the", "walk"]


def test_bos_is_appended_after_the_vocabulary_file_words():
    tok = R2RTokenizer(list(BASE_VOCAB) + ["walk", "left"])
    assert tok.vocab_size == 6 and tok.bos_id == 5
    assert (tok.pad_id, tok.unk_id, tok.eos_id) == (0, 1, 2)
    assert R2RTokenizer(list(BASE_VOCAB) + ["<BOS>", "walk"]).vocab_size == 5
    with pytest.raises(ValueError, match="special tokens"):
        R2RTokenizer(["<PAD>", "walk"])
    with pytest.raises(ValueError, match="repeats"):
        R2RTokenizer(list(BASE_VOCAB) + ["walk", "walk"])


def test_encode_pads_marks_unknown_words_and_decodes():
    tok = R2RTokenizer(R2RTokenizer().build_vocab(SENTENCES, min_count=2), encoding_length=12)
    w = tok.word_to_index
    ids, length = tok.encode("Walk to the stairs.")
    assert ids.dtype == np.int64 and ids.shape == (12,)
    assert ids.tolist() == [tok.bos_id, w["walk"], tok.unk_id, w["the"], w["stairs"], w["."], tok.eos_id] + [0] * 5
    assert length == 7
    assert tok.decode(ids) == "walk <UNK> the stairs ."
    assert tok.decode(ids, length=3) == "walk <UNK>"


def test_encode_truncates_with_eos_in_the_last_position():
    tok = R2RTokenizer(R2RTokenizer().build_vocab(SENTENCES, min_count=1), encoding_length=80)
    ids, length = tok.encode("walk the stairs and turn left at the stairs", max_length=6)
    assert length == 6 and ids[-1] == tok.eos_id and ids[0] == tok.bos_id
    assert tok.decode(ids) == "walk the stairs and"
    ids, length = tok.encode("")
    assert length == 2 and ids[:3].tolist() == [tok.bos_id, tok.eos_id, tok.pad_id]
    batch, lengths = tok.encode_batch(["walk", "turn left ."], max_length=8)
    assert batch.shape == (2, 8) and lengths.tolist() == [3, 5]


def test_tokeniser_without_vocabulary_refuses_to_encode():
    with pytest.raises(ValueError, match="no vocabulary"):
        R2RTokenizer().encode("walk")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        R2RTokenizer(list(BASE_VOCAB) + ["walk"]).decode([4, 99])


def test_vocab_file_round_trip(tmp_path):
    vocab = R2RTokenizer().build_vocab(SENTENCES + ["wait . . go"] * 2, min_count=2)
    assert ". ." in vocab
    path = tmp_path / "vocab" / "train_vocab.txt"
    write_vocab(vocab, path)
    assert read_vocab(path) == vocab
    assert path.read_text().splitlines()[:3] == list(BASE_VOCAB)
    assert R2RTokenizer.from_file(path, encoding_length=9).vocab == vocab + ["<BOS>"]
    with pytest.raises(ValueError):
        write_vocab(["<PAD>", " walk"], tmp_path / "bad.txt")


HINDI = "सीधे जाइए और फिर बाएँ मुड़िए। हिन्दी में लिखा बोर्ड देखिए।"
TELUGU = "ముందుకు వెళ్ళి ఎడమవైపు తిరగండి. తెలుగు బోర్డు దగ్గర ఆగండి."


def test_fallback_keeps_hindi_and_telugu_words_whole():
    hi = split_words(HINDI)
    assert hi == ["सीधे", "जाइए", "और", "फिर", "बाएँ", "मुड़िए", "।", "हिन्दी", "में", "लिखा", "बोर्ड", "देखिए", "।"]
    te = split_words(TELUGU)
    assert te == ["ముందుకు", "వెళ్ళి", "ఎడమవైపు", "తిరగండి", ".", "తెలుగు", "బోర్డు", "దగ్గర", "ఆగండి", "."]
    # Why the regex module: re's \w drops the vowel signs and viramas and cuts the words apart.
    assert re.findall(r"\w+", "हिन्दी") != ["हिन्दी"]
    assert split_words("Turn LEFT!? Stop... then go") == ["turn", "left", "!", "?", "stop", "...", "then", "go"]


def test_fallback_keeps_zero_width_joiners_inside_words():
    word = "क्\u200dष"  # ZWJ requests a half form: still one word
    assert split_words(f"{word} देखिए") == [word, "देखिए"]


def test_detect_language_by_script():
    assert detect_language(HINDI) == "hi" and detect_language(TELUGU) == "te"
    assert detect_language("Walk to the 2nd door") == "en"
    assert detect_language("Go to the हिन्दी sign") == "hi"


def test_multilingual_tokeniser_offline_without_stanza_models(tmp_path):
    t0 = time.perf_counter()
    tok = MultilingualTokenizer(stanza_dir=tmp_path / "no_models")
    assert tok.backend("hi") == "regex" and tok.backend("te-IN") == "regex"
    assert tok.split(HINDI) == split_words(HINDI)
    assert time.perf_counter() - t0 < 2.0  # no download attempt, no stanza import
    assert MultilingualTokenizer(stanza_dir=tmp_path, use_stanza=False).backend("en") == "regex"


def test_multilingual_encode_decode_round_trip():
    corpus = [HINDI, TELUGU, "Walk past the sofa and stop."]
    builder = MultilingualTokenizer(use_stanza=False)
    vocab = builder.build_vocab(corpus, min_count=1)
    assert "मुड़िए" in vocab and "వెళ్ళి" in vocab
    tok = MultilingualTokenizer(vocab, use_stanza=False)
    assert tok.encoding_length == 160
    ids, length = tok.encode(TELUGU)
    assert length == len(split_words(TELUGU)) + 2
    assert tok.decode(ids) == " ".join(split_words(TELUGU))


@pytest.mark.parametrize("cls", [R2RTokenizer, MultilingualTokenizer])
def test_both_tokenisers_share_one_interface(cls):
    builder = cls()
    assert isinstance(builder, VocabTokenizer)
    tok = cls(builder.build_vocab(SENTENCES, min_count=1), encoding_length=16)
    ids, length = tok.encode("walk down the stairs.")
    assert tok.decode(ids[:length]) == "walk down the stairs ."
