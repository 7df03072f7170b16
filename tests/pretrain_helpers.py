"""Tiny CLIP-ViLp models and hand-made batches for the pre-training tests (no corpus needed)."""
from __future__ import annotations

import torch

from pretraining.objectives import IGNORE, mask_tokens

VOCAB, ANSWERS, LENGTH = 40, 5, 8
SPECIAL = torch.arange(5)  # [PAD] [UNK] [CLS] [SEP] [MASK] as WordPiece numbers them
PAD, CLS, SEP, MASK = 0, 2, 3, 4
CANVAS = (64, 96)  # 2 x 3 cells at stride 32


def tiny_model(clip_files: dict, dropout: float = 0.0, seed: int = 0, size: str = "tiny"):
    """A ``tiny`` CLIPViLp over the random tiny CLIP ResNet of ``tests/clip_archives.py``."""
    from pretraining.model import build_model

    torch.manual_seed(seed)
    return build_model(VOCAB, ANSWERS, size, str(clip_files["spec"]), str(clip_files["safetensors"]), dropout=dropout)


def make_batch(n: int, seed: int = 0, lengths=None) -> dict:
    """``n`` examples as the data pipeline makes them: text of 4-6 tokens in [CLS] .. [SEP], MLM
    masks, half mismatched, QA targets on every other pair, random 64 x 96 images (some padded)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((n, LENGTH), PAD)
    mask = torch.zeros(n, LENGTH, dtype=torch.int64)
    for i in range(n):
        k = lengths[i] if lengths else int(torch.randint(4, 7, (), generator=g))
        ids[i, 0], ids[i, k + 1] = CLS, SEP
        ids[i, 1:k + 1] = torch.randint(5, VOCAB, (k,), generator=g)
        mask[i, :k + 2] = 1
    inputs, labels = zip(*(mask_tokens(ids[i], torch.isin(ids[i], SPECIAL), VOCAB, MASK, g, probability=0.3)
                           for i in range(n)))
    labels = torch.stack(labels)
    labels[:, 1][(labels != IGNORE).sum(1) == 0] = ids[:, 1][(labels != IGNORE).sum(1) == 0]  # one target at least
    qa = torch.zeros(n, ANSWERS)
    qa[torch.arange(n), torch.randint(ANSWERS, (n,), generator=g)] = 1.0
    sizes = torch.tensor([CANVAS if i % 3 else (CANVAS[0], 40) for i in range(n)])
    return {"input_ids": torch.stack(inputs), "attention_mask": mask, "mlm_labels": labels,
            "itm_label": torch.arange(n) % 2, "qa_target": qa, "qa_valid": torch.arange(n) % 2 == 1,
            "images": torch.randint(0, 256, (n, 3, *CANVAS), generator=g, dtype=torch.uint8),
            "image_sizes": sizes, "cell_seeds": torch.randint(2**40, (n,), generator=g)}


def split_batch(batch: dict, parts) -> list[dict]:
    """Rows ``parts[k]`` (index lists) of every tensor of ``batch``."""
    return [{k: v[list(p)] for k, v in batch.items()} for p in parts]
