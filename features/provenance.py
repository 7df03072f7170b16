"""Which encoder made a feature store, recorded in the store and in every checkpoint trained on it.

The record (one JSON object, the same in every store format and in checkpoint meta)::

    {"name": "clip_r50x4",              # registry name
     "architecture": "RN50x4-quickgelu", # open_clip / torchvision architecture
     "weights": "RN50x4.pt",             # weights tag ("openai") or the file's name (no directory)
     "weights_sha256": "7e52...",        # SHA-256 of that file, or None for a tag / seeded / random
     "random": False}                    # True: random weights, for tests and benchmarks only

It lives under ``metadata[RECORD_KEY]`` of a store (``meta.json`` of a ``.feats`` directory, the
``<file>.meta.json`` sidecar of a TSV) and under ``meta[CHECKPOINT_KEY]`` of every checkpoint trained
on the store; :func:`check_store` / :func:`check_checkpoint_store` are what training, evaluation,
export and speaking call before using features. Stores written before records existed may still hold the
older ``encoder`` / ``weights`` / ``random_weights`` fields, from which a record is rebuilt; a store
with neither (a released R2R TSV) has *unknown provenance*: it is accepted with a one-line notice
(``convert_features.py --encoder NAME`` stamps a record on it).

Two records are of *the same encoder* when name, architecture and ``random`` agree; anything else
is refused. Two files of the same encoder with different hashes are only reported (one warning
line): the same OpenAI weights travel as ``RN50x4.pt`` and as open_clip / Hugging Face
``.bin`` / ``.safetensors`` files whose bytes differ (OpenAI's own files are recognised by their
published SHA-256 and recorded as the ``openai`` tag).
NumPy and the standard library only (``import features`` stays light).
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from vln.errors import VLNError

logger = logging.getLogger(__name__)

#: Key of the record in a store's metadata.
RECORD_KEY = "provenance"
#: Key, in a checkpoint's meta, of the record of the store it was trained on (None: unknown).
CHECKPOINT_KEY = "feature_provenance"
FIELDS = ("name", "architecture", "weights", "weights_sha256", "random")
#: Fields whose disagreement means "another encoder".
_IDENTITY = ("name", "architecture", "random")
_noticed: set = set()


class FeatureProvenanceError(VLNError, ValueError):
    """A feature store made by another encoder than expected, or by random weights when that was
    not asked for; the message names the store, both encoders and the flag that overrides."""


def encoder_record(name: str, architecture: str | None, weights: str | None, weights_sha256: str | None = None,
                   random: bool = False) -> dict:
    """The provenance record (see the module docstring); ``weights`` is reduced to a file name."""
    if weights is not None and (os.sep in str(weights) or str(weights).startswith(".")):
        weights = Path(str(weights)).name
    return {"name": str(name), "architecture": None if architecture is None else str(architecture),
            "weights": None if weights is None else str(weights),
            "weights_sha256": weights_sha256, "random": bool(random)}


def record_of_encoder(encoder) -> dict:
    """The record of a built encoder (``spec``, ``weights``, ``random_weights`` and, for weights
    read from a file, ``weights_sha256``: the loader's, or the file's hash when the encoder has none)."""
    spec, weights = encoder.spec, getattr(encoder, "weights", None)
    digest = getattr(encoder, "weights_sha256", None)
    if digest is None and weights and os.path.isfile(str(weights)):
        digest = sha256_file(weights)
    return encoder_record(spec.name, spec.architecture, weights, digest,
                          bool(getattr(encoder, "random_weights", False)))


def record_of_spec(name: str, weights: str | None = None) -> dict:
    """The record of a registered encoder with its default (non-random) weights tag, or ``weights``
    (for stamping a store made elsewhere, e.g. a released TSV)."""
    from .registry import get_spec

    spec = get_spec(name)
    return encoder_record(spec.name, spec.architecture, weights or spec.weights_tag, None, False)


def stamp(metadata: dict, record: dict) -> dict:
    """``metadata`` with the record (and the older fields readers before records used) set."""
    out = dict(metadata)
    out[RECORD_KEY] = dict(record)
    out["random_weights"] = bool(record["random"])
    out.setdefault("weights", record["weights"])
    return out


def store_record(metadata: dict) -> dict | None:
    """The record of a store from its metadata, rebuilt from older fields when needed; None when
    the store does not say which encoder made it."""
    rec = metadata.get(RECORD_KEY)
    if isinstance(rec, dict) and "name" in rec:
        return {k: rec.get(k) for k in FIELDS}
    enc = metadata.get("encoder")
    if isinstance(enc, dict) and enc.get("name"):
        return encoder_record(enc["name"], enc.get("architecture"), metadata.get("weights"), None,
                              bool(metadata.get("random_weights")))
    return None


def describe(record: dict | None) -> str:
    """One line for messages: ``clip_r50x4 (RN50x4-quickgelu, weights RN50x4.pt sha256 7e526bd1...)``."""
    if record is None:
        return "an unknown encoder"
    w = "RANDOM weights" if record.get("random") else f"weights {record.get('weights')}"
    if record.get("weights_sha256"):
        w += f" sha256 {record['weights_sha256'][:12]}"
    return f"{record.get('name')} ({record.get('architecture')}, {w})"


def mismatch(a: dict, b: dict) -> list[str]:
    """Identity fields on which two records disagree (empty: the same encoder)."""
    return [k for k in _IDENTITY if a.get(k) != b.get(k)]


def other_weights(a: dict, b: dict) -> bool:
    """True when both records name a weights file hash and the hashes differ."""
    return bool(a.get("weights_sha256") and b.get("weights_sha256") and a["weights_sha256"] != b["weights_sha256"])


def check_store(store, expected: dict | None = None, allow_random: bool = False,
                expected_from: str = "") -> dict | None:
    """Check that a feature store may be used; returns its record (None: unknown provenance).

    Args:
        store: a :class:`features.store.FeatureStore` (or None: no visual features, nothing to check).
        expected: the record the features must match (a checkpoint's), or None.
        allow_random: accept features of random-weight encoders (tests, benchmarks).
        expected_from: what ``expected`` comes from, for the message (``checkpoint runs/x/best.pt``).

    Raises:
        FeatureProvenanceError: random-weight features without ``allow_random``, or a record that
            does not match ``expected``.
    """
    if store is None:
        return None
    rec = store_record(store.metadata)
    if rec is None:
        key = str(store.path)
        if key not in _noticed:
            _noticed.add(key)
            logger.warning("%s does not record which encoder made it (unknown provenance): used as is; "
                           "stamp it with scripts/convert_features.py SRC DST --encoder NAME", store.path)
        return None
    if rec["random"] and not allow_random:
        raise FeatureProvenanceError(
            f"{store.path} holds features of {describe(rec)}: meaningless for results; extract them with "
            f"real weights (--weights PATH or $CLIPVIL_WEIGHTS_DIR), or pass --allow-random-features "
            f"(tests and benchmarks)")
    if expected is not None:
        diff = mismatch(rec, expected)
        if diff:
            raise FeatureProvenanceError(
                f"{store.path} holds features of {describe(rec)} but {expected_from or 'the model'} was trained on "
                f"{describe(expected)} (differ in {', '.join(diff)}); pass the store of that encoder (--features)")
        if other_weights(rec, expected):
            logger.warning("%s holds features of %s; %s was trained on %s: another weights file of the same encoder",
                           store.path, describe(rec), expected_from or "the model", describe(expected))
    return rec


def check_checkpoint_store(store, meta: dict, checkpoint, allow_random: bool = False) -> dict | None:
    """:func:`check_store` against the record a checkpoint's ``meta`` holds under
    :data:`CHECKPOINT_KEY` (a checkpoint from before records were kept: only the random check)."""
    return check_store(store, meta.get(CHECKPOINT_KEY), allow_random, f"checkpoint {checkpoint}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in 4 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
