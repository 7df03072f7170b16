"""Scoring a trained captioner: decode a checkpoint on a split, and the learning check's controls.

* :func:`decode_checkpoint`: a run's checkpoint -> COCO-format results of beam search on a split.
* :func:`best_constant_caption`: the training caption that, given to every training image, scores
  the highest corpus CIDEr on the training set (the "best constant caption" baseline).
* :func:`learning_check`: CIDEr on a split of the model, of the model on shuffled images (each
  image decoded from another image's grid) and of the best constant caption, in one run.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .cider import CiderD, WordIds
from .data import Vocab
from .model import CaptionModelConfig, CaptionTransformer


def load_model(checkpoint: str | Path, device="cpu"):
    """(model in eval mode, vocab, saved settings dict) of a captioning checkpoint."""
    from training.checkpoint import load_checkpoint

    from .train import FORMAT

    tensors, meta = load_checkpoint(checkpoint, map_location=device, fmt=FORMAT)
    model = CaptionTransformer(CaptionModelConfig(**meta["model_config"])).to(device)
    model.load_state_dict(tensors["model"])
    return model.eval(), Vocab(meta["vocab"]), meta["settings"]


def decode_checkpoint(checkpoint: str | Path, split: str, beam: int, device="cpu"):
    """(COCO results, image id -> raw reference captions) of beam decoding ``split``."""
    from .train import CaptionConfig, CaptionData, caption_split

    model, vocab, settings = load_model(checkpoint, device)
    cfg = CaptionConfig(**settings)
    data = CaptionData(cfg, vocab=vocab)
    if not data.splits.get(split):
        raise ValueError(f"{data.paths['karpathy']} has no {split} images")
    results = caption_split(model, data, split, beam, torch.device(device))
    refs = {im["cocoid"]: [s["raw"] for s in im["sentences"]] for im in data.splits[split]}
    return results, refs


def best_constant_caption(train_refs: dict[int, list[str]]) -> tuple[str, float]:
    """(caption, corpus CIDEr on train) of the training caption that scores best when given to
    every training image (df from the training references, as pycocoevalcap on that set)."""
    words = WordIds()
    ids = list(train_refs)
    sets = [[words.encode(r) for r in train_refs[i]] for i in ids]
    candidates = sorted({r for i in ids for r in train_refs[i]})
    enc = [words.encode(c) for c in candidates]
    scorer = CiderD(sets, max(1, len(words.ids)))
    index = np.arange(len(ids))
    best, best_score = None, -1.0
    for cap, e in zip(candidates, enc):
        s = float(scorer.score([e] * len(ids), index).mean())
        if s > best_score:
            best, best_score = cap, s
    return best, best_score


def learning_check(model, data, split: str, beam: int, device, seed: int = 0) -> dict:
    """CIDEr (pycocoevalcap's, df from the split's references) on ``split`` of the model, of the
    model fed shuffled images, and of the best constant caption; all x1 scale."""
    from .train import caption_split, cider_of

    refs = data.references(split)
    results = caption_split(model, data, split, beam, device)
    order = np.random.default_rng(seed).permutation(len(results))
    shuffled = caption_split(model, data, split, beam, device, image_order=order)
    const, const_train = best_constant_caption(data.references("train"))
    const_results = [{"image_id": r["image_id"], "caption": const} for r in results]
    return {"cider": cider_of(results, refs), "cider_shuffled": cider_of(shuffled, refs),
            "cider_constant": cider_of(const_results, refs), "constant_caption": const,
            "constant_cider_train": const_train, "n_images": len(results)}
