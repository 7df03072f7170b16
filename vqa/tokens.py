"""Question words -> ids, as MCAN does it (``mcan-vqa`` ``core/data/data_utils.py``).

Split: lower case, the marks ``.,'!?"()*#:;`` deleted, ``-`` and ``/`` turned into spaces, split
on white space. Ids: ``PAD`` 0, ``UNK`` 1, then the training questions' words in first-seen
order; a question is cut or zero-padded to ``max_tokens`` (MCAN: 14).
"""
from __future__ import annotations

import os
import re
from typing import Iterable

import numpy as np

from vln.errors import DataFormatError
from vln.io_utils import atomic_write_json, read_json

PAD, UNK = "<PAD>", "<UNK>"
MAX_TOKENS = 14
_DROP = re.compile(r"([.,'!?\"()*#:;])")


def split_question(question: str) -> list[str]:
    """MCAN's word split (see the module docstring)."""
    return _DROP.sub("", question.lower()).replace("-", " ").replace("/", " ").split()


class QuestionTokenizer:
    """Word ids of questions.

    Args:
        words: the vocabulary in id order; must start with ``<PAD>``, ``<UNK>``.
        max_tokens: the encoding length.
    """

    def __init__(self, words: list[str], max_tokens: int = MAX_TOKENS):
        if words[:2] != [PAD, UNK]:
            raise ValueError(f"a question vocabulary starts with {PAD}, {UNK}")
        self.words = list(words)
        self.word2id = {w: i for i, w in enumerate(self.words)}
        self.max_tokens = max_tokens

    def __len__(self) -> int:
        return len(self.words)

    @classmethod
    def build(cls, questions: Iterable[str], max_tokens: int = MAX_TOKENS) -> "QuestionTokenizer":
        """Vocabulary of every word of ``questions`` (first-seen order)."""
        words = {PAD: 0, UNK: 1}
        for q in questions:
            for w in split_question(q):
                words.setdefault(w, len(words))
        return cls(list(words), max_tokens)

    def encode(self, question: str) -> np.ndarray:
        """(max_tokens,) int64 ids, zero-padded; unknown words -> UNK."""
        ids = [self.word2id.get(w, 1) for w in split_question(question)][: self.max_tokens]
        out = np.zeros(self.max_tokens, dtype=np.int64)
        out[: len(ids)] = ids
        return out

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_json(path, {"max_tokens": self.max_tokens, "words": self.words})

    @classmethod
    def load(cls, path: str | os.PathLike) -> "QuestionTokenizer":
        data = read_json(path)
        if not isinstance(data, dict) or not isinstance(data.get("words"), list):
            raise DataFormatError(path, None, "words", "must be a list of words")
        return cls(data["words"], int(data.get("max_tokens", MAX_TOKENS)))
