"""Corpus BLEU of generated instructions against the reference instructions of each path.

Scores come from ``pycocoevalcap`` (the COCO caption evaluation code, also used by the captioning
sibling task): corpus-level BLEU-1..4 with the brevity penalty of the closest reference length.
Texts are compared as the tokeniser's words (lower-cased, punctuation split), so a hypothesis and
its references are tokenised the same way.
"""
from __future__ import annotations

from typing import Mapping, Sequence


def corpus_bleu(hypotheses: Mapping[str, str], references: Mapping[str, Sequence[str]], split) -> dict:
    """BLEU of ``hypotheses[key]`` against ``references[key]`` over all keys.

    Args:
        hypotheses: key (for example a path id) -> generated text.
        references: key -> one or more reference texts (same keys as ``hypotheses``).
        split: ``sentence -> list of words``, for example ``tokenizer.split``.

    Returns:
        ``{"bleu": BLEU-4, "bleu1": ..., "bleu2": ..., "bleu3": ...}`` as fractions in [0, 1].

    Raises:
        ValueError: the key sets differ, a key has no reference, or there is nothing to score.
    """
    from pycocoevalcap.bleu.bleu import Bleu

    if set(hypotheses) != set(references):
        missing = sorted(set(references) ^ set(hypotheses))[:5]
        raise ValueError(f"hypotheses and references must have the same keys; these differ: {missing}")
    if not hypotheses:
        raise ValueError("no hypotheses to score")
    gts, res = {}, {}
    for key, hyp in hypotheses.items():
        refs = [" ".join(split(r)) for r in references[key]]
        if not refs:
            raise ValueError(f"key {key!r} has no reference instruction")
        gts[key] = refs
        res[key] = [" ".join(split(hyp))]
    scores, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return {"bleu": float(scores[3]), "bleu1": float(scores[0]), "bleu2": float(scores[1]), "bleu3": float(scores[2])}
