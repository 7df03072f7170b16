"""WordPiece text encoding for CLIP-ViLp (BERT's uncased tokenisation, via the ``tokenizers`` library).

No BERT vocabulary can be downloaded here, so a vocabulary is either a user's ``vocab.txt``
(``bert-base-uncased``'s, or any BERT-format file: one token a line, the line number is the id) or
is trained on the corpus text with ``tokenizers``' WordPiece trainer and saved in the run folder.

Public API::

    wp = WordPiece.from_vocab_file("vocab.txt", max_length=20)   # BertWordPieceTokenizer(lowercase=True)
    wp = WordPiece.train(texts, vocab_size=30522, min_frequency=2)  # deterministic (see below)
    wp.save("RUN/vocab.txt")                                       # atomic
    wp = load_or_train(run_dir, texts, vocab=None)                 # --vocab FILE, RUN/vocab.txt, or train
    ids, mask = wp.encode(["a man on a horse.", ...])              # (B, max_length) int64 each
    wp.pad_id, wp.cls_id, wp.sep_id, wp.mask_id, wp.unk_id, wp.special_ids, wp.vocab_size
    wp.decode(ids_row) -> str;  wp.tokens(text) -> list[str]

Encoding: ``[CLS] tokens [SEP]`` truncated to ``max_length`` (the paper's 20) including both
specials, padded with ``[PAD]`` to exactly ``max_length``; ``mask`` is 1 on real tokens (CLS and
SEP included) and 0 on padding. ``special_ids`` are the ids MLM masking must never pick.

Determinism: ``tokenizers``' BPE-based WordPiece trainer (0.23) gives the continuing-subword
tokens (``##e``) ids in hash-map order, and ids break ties between merges of equal count, so two
processes trained on the same text can return different vocabularies (huggingface/tokenizers
#1794). :meth:`WordPiece.train` registers every ``##c`` of the corpus's characters, sorted, before
training, which fixes those ids: the same texts give a byte-identical ``vocab.txt``.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from vln.errors import DataFormatError
from vln.io_utils import atomic_write_text

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
#: The paper's text length (CLIP-ViLp, as LXMERT): 20 tokens with [CLS] and [SEP].
MAX_LENGTH = 20
#: bert-base-uncased's vocabulary size; a small corpus stops the trainer well before it.
VOCAB_SIZE = 30522
VOCAB_FILE = "vocab.txt"


def _bert_tokenizer(vocab: str | None = None):
    from tokenizers import BertWordPieceTokenizer

    return BertWordPieceTokenizer(vocab, lowercase=True, unk_token=UNK, sep_token=SEP, cls_token=CLS,
                                  pad_token=PAD, mask_token=MASK)


def read_vocab(path: str | os.PathLike) -> list[str]:
    """The tokens of a BERT ``vocab.txt`` in id order, checked: no blank or repeated token, every
    special token of :data:`SPECIAL_TOKENS` present.

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: naming the file, the line and the problem.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary {path} does not exist (--vocab takes a BERT vocab.txt)")
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise DataFormatError(path, None, None, f"is not UTF-8 text ({e})") from None
    if lines and lines[-1] == "":
        lines.pop()
    seen = {}
    for n, tok in enumerate(lines, start=1):
        tok = tok.rstrip("\r")
        if not tok.strip():
            raise DataFormatError(path, f"line {n}", "token", "is blank (one token a line, the line number is its id)")
        if tok in seen:
            raise DataFormatError(path, f"line {n}", "token", f"{tok!r} repeats line {seen[tok]}")
        seen[tok] = n
    missing = [t for t in SPECIAL_TOKENS if t not in seen]
    if missing:
        raise DataFormatError(path, None, "token", f"special tokens {missing} are missing (a BERT vocab.txt holds "
                              f"{', '.join(SPECIAL_TOKENS)})")
    return [t.rstrip("\r") for t in lines]


class WordPiece:
    """BERT uncased WordPiece over a fixed vocabulary.

    Args:
        vocab: tokens in id order (:func:`read_vocab` checks a file's).
        max_length: tokens per encoded text, [CLS] and [SEP] included.
    """

    def __init__(self, vocab: Sequence[str], max_length: int = MAX_LENGTH):
        if max_length < 3:
            raise ValueError(f"max_length must leave room for [CLS], a token and [SEP], got {max_length}")
        self.vocab = list(vocab)
        self.max_length = int(max_length)
        with tempfile.TemporaryDirectory() as d:  # the library loads a vocabulary from a file
            f = Path(d) / VOCAB_FILE
            f.write_text(self.vocab_text(), encoding="utf-8")
            self._tok = _bert_tokenizer(str(f))
            self._plain = _bert_tokenizer(str(f))  # no truncation or padding: tokens()
        ids = {t: i for i, t in enumerate(self.vocab)}
        self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id = (ids[t] for t in SPECIAL_TOKENS)
        self._tok.enable_truncation(self.max_length)
        self._tok.enable_padding(length=self.max_length, pad_id=self.pad_id, pad_token=PAD)

    @classmethod
    def from_vocab_file(cls, path: str | os.PathLike, max_length: int = MAX_LENGTH) -> "WordPiece":
        """A user's BERT ``vocab.txt`` (``BertWordPieceTokenizer(vocab, lowercase=True)`` semantics)."""
        return cls(read_vocab(path), max_length)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = VOCAB_SIZE, min_frequency: int = 2,
              max_length: int = MAX_LENGTH) -> "WordPiece":
        """Train a vocabulary on ``texts`` with ``tokenizers``' WordPiece trainer, deterministically.

        Args:
            texts: the corpus sentences (captions and questions); order does not matter.
            vocab_size: upper bound on the vocabulary (specials included).
            min_frequency: merges seen fewer times are not made.
        """
        texts = list(texts)
        if not texts:
            raise ValueError("cannot train a WordPiece vocabulary on no text")
        trainer_tok = _bert_tokenizer()
        continuing = set()
        for text in texts:
            for word, _ in trainer_tok.pre_tokenizer.pre_tokenize_str(trainer_tok.normalizer.normalize_str(text)):
                continuing.update(word[1:])
        # Registered first, the ##c tokens get ids in sorted order instead of hash-map order (module doc).
        specials = list(SPECIAL_TOKENS) + ["##" + c for c in sorted(continuing)]
        trainer_tok.train_from_iterator(texts, vocab_size=max(vocab_size, len(specials)), min_frequency=min_frequency,
                                        special_tokens=specials, show_progress=False, wordpieces_prefix="##")
        vocab = sorted(trainer_tok.get_vocab().items(), key=lambda kv: kv[1])
        return cls([t for t, _ in vocab], max_length)

    def vocab_text(self) -> str:
        """The ``vocab.txt`` text: one token a line, in id order."""
        return "".join(t + "\n" for t in self.vocab)

    def save(self, path: str | os.PathLike) -> None:
        """Write the vocabulary as a BERT ``vocab.txt`` (atomically)."""
        atomic_write_text(path, self.vocab_text())

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    @property
    def special_ids(self) -> frozenset[int]:
        """Ids of [PAD], [UNK], [CLS], [SEP], [MASK]: never masked, never predicted as words."""
        return frozenset((self.pad_id, self.unk_id, self.cls_id, self.sep_id, self.mask_id))

    def encode(self, texts: Sequence[str]) -> tuple["torch.Tensor", "torch.Tensor"]:
        """``[CLS] ... [SEP]`` ids of each text, truncated and padded to ``max_length``.

        Returns:
            (ids, mask): (B, max_length) int64 each; mask 1 on real tokens, 0 on [PAD].
        """
        import torch

        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, not one string")
        enc = self._tok.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in enc], dtype=torch.long).reshape(len(enc), self.max_length)
        mask = torch.tensor([e.attention_mask for e in enc], dtype=torch.long).reshape(len(enc), self.max_length)
        return ids, mask

    def tokens(self, text: str) -> list[str]:
        """The WordPiece tokens of one text (no specials, no truncation)."""
        return self._plain.encode(text, add_special_tokens=False).tokens

    def decode(self, ids) -> str:
        """Text of a row of ids, specials and padding dropped, word pieces joined."""
        ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
        return self._tok.decode(ids, skip_special_tokens=True)


def load_or_train(run_dir: str | os.PathLike, texts: Iterable[str] | None = None, vocab: str | os.PathLike | None = None,
                  max_length: int = MAX_LENGTH, vocab_size: int = VOCAB_SIZE, min_frequency: int = 2) -> WordPiece:
    """The run's tokenizer, saved as ``run_dir/vocab.txt`` so the run (and fine-tuning) reuse it.

    * ``vocab`` given: that file (checked), copied into the run folder (a run folder holding
      another vocabulary is an error);
    * else ``run_dir/vocab.txt`` when it exists (a resumed run);
    * else trained on ``texts`` (:meth:`WordPiece.train`) and saved.
    """
    target = Path(run_dir) / VOCAB_FILE
    if vocab is not None:
        wp = WordPiece.from_vocab_file(vocab, max_length)
        if target.exists() and target.read_text(encoding="utf-8") != wp.vocab_text():
            raise ValueError(f"{target} holds another vocabulary than --vocab {vocab}: the run was made with it; "
                             "start a new run folder to change the vocabulary")
    elif target.exists():
        return WordPiece.from_vocab_file(target, max_length)
    else:
        if texts is None:
            raise ValueError(f"{target} does not exist and no texts were given to train a vocabulary on")
        wp = WordPiece.train(texts, vocab_size=vocab_size, min_frequency=min_frequency, max_length=max_length)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        wp.save(target)
    return wp
