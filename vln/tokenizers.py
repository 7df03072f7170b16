"""Instruction tokenisers: the EnvDrop R2R word tokeniser and a multilingual one for RxR.

Both share one interface (:class:`VocabTokenizer`): ``split(sentence) -> words``,
``build_vocab(sentences, min_count, start_vocab) -> vocab``, ``encode(sentence) -> (ids, length)``
and ``decode(ids) -> sentence``, so an environment can take either.

:class:`R2RTokenizer` matches ``Tokenizer`` of airsplay/R2R-EnvDrop ``r2r_src/utils.py``:
split on ``(\\W+)``, lower-case, split punctuation-only tokens into characters unless they are all
dots; the vocabulary file holds ``<PAD> <UNK> <EOS>`` then the words by decreasing frequency
(``min_count`` 5), and ``<BOS>`` is appended at load time; an encoding is
``<BOS> words <EOS>`` padded with ``<PAD>`` or cut with ``<EOS>`` in the last position.

A vocabulary is only meaningful with the splitter that built it: :meth:`VocabTokenizer.describe`
says which one splits each language (the EnvDrop regex, the offline multilingual regex, or a
stanza model named by version, file and hash); runs record it next to the vocabulary, and
:func:`check_tokenizer` refuses to load a vocabulary with a different splitter.
"""
from __future__ import annotations

import logging
import os
import re
import string
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import regex

from .errors import VLNError
from .io_utils import atomic_write_text

logger = logging.getLogger(__name__)

PAD, UNK, EOS, BOS = "<PAD>", "<UNK>", "<EOS>", "<BOS>"
#: The first words of every vocabulary file (EnvDrop ``base_vocab``); ``<BOS>`` is added on load.
BASE_VOCAB = (PAD, UNK, EOS)


def read_vocab(path: str | os.PathLike) -> list[str]:
    """Read a vocabulary file: one word per line, line order = index order."""
    with open(path, encoding="utf-8") as f:
        return [w.strip() for w in f.read().splitlines() if w.strip()]


def write_vocab(vocab: Sequence[str], path: str | os.PathLike) -> None:
    """Write a vocabulary file (one word per line) atomically."""
    bad = [w for w in vocab if not w or w != w.strip() or "\n" in w]
    if bad:
        raise ValueError(f"vocabulary words must be non-empty without surrounding whitespace: {bad[:5]}")
    atomic_write_text(path, "".join(f"{w}\n" for w in vocab))


class TokenizerMismatch(VLNError, ValueError):
    """A vocabulary is about to be used with another splitter than the one that built it."""


class VocabTokenizer:
    """Word tokeniser with a fixed vocabulary; subclasses define :meth:`split`.

    Args:
        vocab: words in index order; must contain ``<PAD>``, ``<UNK>`` and ``<EOS>``. ``<BOS>`` is
            appended when absent (as EnvDrop does), so ``vocab_size == len(vocab) + 1`` then.
            ``None`` makes a tokeniser that can only :meth:`split` and :meth:`build_vocab`.
        encoding_length: default length of :meth:`encode` output (EnvDrop ``maxInput`` 80 on R2R;
            160 on RxR).
    """

    def __init__(self, vocab: Sequence[str] | None = None, encoding_length: int = 80):
        if encoding_length < 2:
            raise ValueError("encoding_length must be at least 2 (<BOS> and <EOS>)")
        self.encoding_length = encoding_length
        self.vocab: list[str] = []
        self.word_to_index: dict[str, int] = {}
        if vocab is not None:
            self._set_vocab(vocab)

    def _set_vocab(self, vocab: Sequence[str]) -> None:
        missing = [w for w in BASE_VOCAB if w not in vocab]
        if missing:
            raise ValueError(f"vocabulary lacks the special tokens {missing}")
        if len(set(vocab)) != len(vocab):
            dup = [w for w, n in Counter(vocab).items() if n > 1]
            raise ValueError(f"vocabulary repeats words: {dup[:5]}")
        self.vocab = list(vocab)
        if BOS not in self.vocab:
            self.vocab.append(BOS)
        self.word_to_index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.unk_id = self.word_to_index[PAD], self.word_to_index[UNK]
        self.eos_id, self.bos_id = self.word_to_index[EOS], self.word_to_index[BOS]

    @property
    def vocab_size(self) -> int:
        """Number of words including the special tokens (embedding table size)."""
        return len(self.vocab)

    # ------------------------------------------------------------ interface
    def split(self, sentence: str) -> list[str]:
        """Break a sentence into (lower-cased) words and punctuation."""
        raise NotImplementedError

    def describe(self, languages: Iterable[str] | None = None) -> dict:
        """Which splitter this tokeniser uses: ``{"tokenizer": class name, "languages": {lang: backend}}``
        (JSON; recorded with a vocabulary and compared by :func:`check_tokenizer`)."""
        return {"tokenizer": type(self).__name__, "languages": {}}

    def with_vocab(self, vocab: Sequence[str]) -> "VocabTokenizer":
        """A tokeniser splitting as this one does, with ``vocab``."""
        return type(self)(vocab, encoding_length=self.encoding_length)

    @classmethod
    def from_file(cls, path: str | os.PathLike, **kw) -> "VocabTokenizer":
        """A tokeniser with the vocabulary of ``path`` (see :func:`read_vocab`)."""
        return cls(read_vocab(path), **kw)

    def _need_vocab(self) -> None:
        if not self.vocab:
            raise ValueError(f"{type(self).__name__} has no vocabulary; build one with build_vocab() first")

    def build_vocab(self, sentences: Iterable[str], min_count: int = 5,
                    start_vocab: Sequence[str] = BASE_VOCAB) -> list[str]:
        """A vocabulary from ``sentences``: ``start_vocab`` then words seen ``>= min_count`` times.

        Words are ordered by decreasing count; equal counts keep first-seen order
        (``Counter.most_common``), as EnvDrop's ``build_vocab`` does.
        """
        count = Counter()
        for s in sentences:
            count.update(self.split(s))
        vocab, seen = list(start_vocab), set(start_vocab)
        for word, num in count.most_common():
            if num < min_count:
                break
            if word not in seen:
                vocab.append(word)
                seen.add(word)
        return vocab

    def encode(self, sentence: str, max_length: int | None = None) -> tuple[np.ndarray, int]:
        """Token ids of ``sentence``.

        Returns:
            ids: (max_length,) int64, ``<BOS> words <EOS>`` then ``<PAD>``; a longer sentence is
                cut to ``max_length`` with ``<EOS>`` in the last position. Unknown words map to
                ``<UNK>``.
            length: number of ids before the padding (``<BOS>`` and ``<EOS>`` included),
                at most ``max_length``. An empty sentence gives ``<BOS> <EOS>`` and length 2
                (EnvDrop returns ``None`` there and drops the episode).
        """
        self._need_vocab()
        max_length = self.encoding_length if max_length is None else max_length
        if max_length < 2:
            raise ValueError("max_length must be at least 2 (<BOS> and <EOS>)")
        w2i, unk = self.word_to_index, self.unk_id
        ids = [self.bos_id] + [w2i.get(w, unk) for w in self.split(sentence)] + [self.eos_id]
        if len(ids) > max_length:
            ids = ids[:max_length]
            ids[-1] = self.eos_id
        length = len(ids)
        out = np.full(max_length, self.pad_id, dtype=np.int64)
        out[:length] = ids
        return out, length

    def encode_batch(self, sentences: Sequence[str], max_length: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Encode several sentences: (B, max_length) int64 ids and (B,) int64 lengths."""
        max_length = self.encoding_length if max_length is None else max_length
        ids = np.empty((len(sentences), max_length), dtype=np.int64)
        lengths = np.empty(len(sentences), dtype=np.int64)
        for i, s in enumerate(sentences):
            ids[i], lengths[i] = self.encode(s, max_length)
        return ids, lengths

    def decode(self, ids: Iterable[int], length: int | None = None) -> str:
        """Words of ``ids`` joined by spaces: a leading ``<BOS>`` is dropped and decoding stops
        at the first ``<EOS>`` or ``<PAD>`` (or after ``length`` ids)."""
        self._need_vocab()
        ids = [int(i) for i in ids]
        if length is not None:
            ids = ids[:length]
        if ids and ids[0] == self.bos_id:
            ids = ids[1:]
        words = []
        for i in ids:
            if i in (self.eos_id, self.pad_id):
                break
            if not 0 <= i < len(self.vocab):
                raise ValueError(f"token id {i} is outside the vocabulary of {len(self.vocab)} words")
            words.append(self.vocab[i])
        return " ".join(words)


_PUNCTUATION = frozenset(string.punctuation)


class R2RTokenizer(VocabTokenizer):
    """The EnvDrop R2R tokeniser (English; splits on non-word characters)."""

    SENTENCE_SPLIT_REGEX = re.compile(r"(\W+)")

    @staticmethod
    def split_sentence(sentence: str) -> list[str]:
        """EnvDrop ``Tokenizer.split_sentence``: e.g. ``"Go left!? Stop..."`` ->
        ``['go', 'left', '!', '?', 'stop', '...']``."""
        toks = []
        for part in R2RTokenizer.SENTENCE_SPLIT_REGEX.split(sentence.strip()):
            word = part.strip().lower()
            if not word:
                continue
            # Punctuation runs like '!?' become separate tokens; runs of dots ('..') stay whole.
            if _PUNCTUATION.issuperset(word) and word.strip("."):
                toks.extend(word)
            else:
                toks.append(word)
        return toks

    def split(self, sentence: str) -> list[str]:
        return self.split_sentence(sentence)

    def describe(self, languages: Iterable[str] | None = None) -> dict:
        return {"tokenizer": type(self).__name__, "languages": {"en": R2R_BACKEND}}



# ---------------------------------------------------------------------------- multilingual
#: A word is a run of letters, combining marks, digits and zero-width (non-)joiners: Python's
#: ``re`` ``\w`` does not match combining marks (Devanagari/Telugu vowel signs, virama), so it
#: would cut "हिन्दी" into ह, न, द. Runs of dots stay whole (as in EnvDrop); every other
#: punctuation character (including the danda "।") is its own token.
_WORD_RE = regex.compile(r"[\p{L}\p{M}\p{N}\u200c\u200d]+|\.+|[^\s\p{L}\p{M}\p{N}\u200c\u200d]")
#: Backend names recorded with a vocabulary; bump the version when a split rule changes.
R2R_BACKEND = "regex EnvDrop (\\W+) split v1"
REGEX_BACKEND = "regex split_words v1"
#: Script -> stanza language code, for picking a pipeline from the text itself.
_SCRIPTS = (("hi", regex.compile(r"\p{Devanagari}")), ("te", regex.compile(r"\p{Telugu}")))


def split_words(sentence: str) -> list[str]:
    """The offline multilingual split: NFC-normalised, lower-cased words and punctuation.

    ``"सीधे जाइए।"`` -> ``['सीधे', 'जाइए', '।']``; English splits like the R2R tokeniser.
    """
    return _WORD_RE.findall(unicodedata.normalize("NFC", sentence).lower())


def detect_language(sentence: str) -> str:
    """``"hi"`` or ``"te"`` when the text holds Devanagari or Telugu letters (the more frequent
    script wins), else ``"en"``."""
    counts = [(len(rx.findall(sentence)), lang) for lang, rx in _SCRIPTS]
    n, lang = max(counts)
    return lang if n > 0 else "en"


def stanza_resources_dir(stanza_dir: str | os.PathLike | None = None) -> Path:
    """Where stanza models are looked for.

    ``stanza_dir`` when given; else ``$STANZA_RESOURCES_DIR``; else the first of stanza's default
    folders (``~/.cache/stanza/<version>/resources``, newest version first, then the older
    ``~/stanza_resources``) that holds a ``resources.json``. Found without importing stanza,
    which takes seconds.
    """
    if stanza_dir is not None:
        return Path(stanza_dir)
    if os.environ.get("STANZA_RESOURCES_DIR"):
        return Path(os.environ["STANZA_RESOURCES_DIR"])
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "stanza"
    def version(d: Path) -> tuple:
        return tuple(int(x) if x.isdigit() else -1 for x in d.parent.name.split("."))

    candidates = sorted(cache.glob("*/resources"), key=version, reverse=True) + [Path.home() / "stanza_resources"]
    for d in candidates:
        if (d / "resources.json").is_file():
            return d
    return candidates[0]


class MultilingualTokenizer(VocabTokenizer):
    """Tokeniser for RxR (English, Hindi, Telugu).

    Uses a stanza ``tokenize`` pipeline for a language when its model is already on disk
    (``<stanza_dir>/resources.json`` and ``<stanza_dir>/<lang>/tokenize/``); it never downloads
    (``download_method=None``). Otherwise it falls back to :func:`split_words`, which keeps
    Devanagari and Telugu words whole. The language of a sentence is read from its script
    (:func:`detect_language`) unless given to :meth:`split`.

    Args:
        vocab, encoding_length: see :class:`VocabTokenizer` (RxR uses 160).
        stanza_dir: stanza resources folder (see :func:`stanza_resources_dir`).
        use_stanza: ``False`` forces the offline split.
    """

    def __init__(self, vocab: Sequence[str] | None = None, encoding_length: int = 160,
                 stanza_dir: str | os.PathLike | None = None, use_stanza: bool = True):
        super().__init__(vocab, encoding_length)
        self.stanza_dir = stanza_resources_dir(stanza_dir)
        self.use_stanza = use_stanza
        self._pipelines: dict[str, object] = {}
        self._backends: dict[str, str] = {}
        #: Languages :meth:`split` has been asked to split (what :meth:`describe` reports by default).
        self.languages_seen: set[str] = set()

    def with_vocab(self, vocab: Sequence[str]) -> "MultilingualTokenizer":
        tok = MultilingualTokenizer(vocab, self.encoding_length, self.stanza_dir, self.use_stanza)
        tok._pipelines, tok._backends, tok.languages_seen = self._pipelines, self._backends, set(self.languages_seen)
        return tok

    def backend_description(self, language: str) -> str:
        """What splits ``language``: :data:`REGEX_BACKEND`, or ``"stanza <version> <lang>/tokenize/<file>
        sha256:<first 16 hex>"`` naming the model file exactly."""
        lang = language.split("-")[0].lower()
        if lang not in self._backends:
            pipe = self._pipeline(lang)
            if pipe is None:
                self._backends[lang] = REGEX_BACKEND
            else:
                import hashlib

                import stanza

                model = Path(pipe.processors["tokenize"].config["model_path"])
                digest = hashlib.sha256(model.read_bytes()).hexdigest()[:16]
                self._backends[lang] = f"stanza {stanza.__version__} {lang}/tokenize/{model.name} sha256:{digest}"
        return self._backends[lang]

    def describe(self, languages: Iterable[str] | None = None) -> dict:
        """Backends of ``languages`` (default: those split so far, :attr:`languages_seen`)."""
        langs = sorted({x.split("-")[0].lower() for x in (self.languages_seen if languages is None else languages)})
        return {"tokenizer": type(self).__name__, "languages": {x: self.backend_description(x) for x in langs},
                "stanza_dir": str(self.stanza_dir)}

    def _stanza_model_present(self, lang: str) -> bool:
        tok_dir = self.stanza_dir / lang / "tokenize"
        return (self.stanza_dir / "resources.json").is_file() and tok_dir.is_dir() and any(tok_dir.iterdir())

    def _pipeline(self, lang: str):
        if lang not in self._pipelines:
            pipe = None
            if self.use_stanza and self._stanza_model_present(lang):
                try:
                    import stanza  # heavy (imports torch): only when a model is really there

                    pipe = stanza.Pipeline(lang, dir=str(self.stanza_dir), processors="tokenize",
                                           download_method=None, logging_level="WARN", use_gpu=False)
                except Exception as e:  # a broken local model must not stop training: fall back
                    logger.warning("stanza %s tokeniser in %s unusable (%s); using the offline split", lang,
                                   self.stanza_dir, e)
            elif self.use_stanza:
                logger.info("no stanza %s tokenize model in %s; using the offline split", lang, self.stanza_dir)
            self._pipelines[lang] = pipe
        return self._pipelines[lang]

    def backend(self, language: str) -> str:
        """``"stanza"`` or ``"regex"``: what :meth:`split` uses for ``language`` (``"hi"``, ``"hi-IN"``)."""
        return "stanza" if self._pipeline(language.split("-")[0].lower()) is not None else "regex"

    def split(self, sentence: str, language: str | None = None) -> list[str]:
        """Lower-cased words and punctuation of ``sentence``.

        Args:
            sentence: the text.
            language: ``"en"``, ``"hi"``, ``"te"`` or a locale (``"hi-IN"``); read from the script
                when omitted.
        """
        lang = (language.split("-")[0].lower() if language else detect_language(sentence))
        self.languages_seen.add(lang)
        pipe = self._pipeline(lang)
        if pipe is None:
            return split_words(sentence)
        doc = pipe(unicodedata.normalize("NFC", sentence))
        return [t.text.lower() for s in doc.sentences for t in s.tokens]


def check_tokenizer(recorded: dict | None, tokenizer: VocabTokenizer, source: str) -> None:
    """Refuse to use a vocabulary with another splitter than the one that built it.

    Args:
        recorded: :meth:`VocabTokenizer.describe` as saved with the vocabulary (``None``: a run
            from before it was recorded; a warning, then accepted).
        tokenizer: the tokeniser about to encode with that vocabulary.
        source: the checkpoint or run folder, for the message.

    Raises:
        TokenizerMismatch: another tokeniser class, or a language split by another backend
            (stanza vs the regex split, or another stanza model), naming both and the fix.
    """
    if recorded is None:
        logger.warning("%s does not record which tokenizer built its vocabulary (an older run); not checked", source)
        return
    current = tokenizer.describe(recorded.get("languages", {}))
    if recorded.get("tokenizer") != current["tokenizer"]:
        raise TokenizerMismatch(f"{source}: its vocabulary was built by {recorded.get('tokenizer')} but is being loaded "
                                f"into {current['tokenizer']}")
    for lang, was in sorted(recorded.get("languages", {}).items()):
        now = current["languages"][lang]
        if now != was:
            where = getattr(tokenizer, "stanza_dir", None)
            raise TokenizerMismatch(
                f"{source}: its vocabulary was built with '{lang}' split by [{was}] but here '{lang}' would be split by "
                f"[{now}] (stanza models looked for in {where}); the token ids would not mean the same words. "
                f"Point --stanza-dir at the stanza models the run used"
                + (f" ({recorded['stanza_dir']})" if recorded.get("stanza_dir") else "")
                + (", or at a folder without them for the regex split" if was == REGEX_BACKEND else ""))


__all__ = ["BASE_VOCAB", "BOS", "EOS", "PAD", "REGEX_BACKEND", "UNK", "MultilingualTokenizer", "R2RTokenizer",
           "TokenizerMismatch", "VocabTokenizer", "check_tokenizer", "detect_language", "read_vocab", "split_words",
           "stanza_resources_dir", "write_vocab"]
