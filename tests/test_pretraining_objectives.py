"""MLM masking (15%, 80/10/10, never special tokens), ITM negatives (p = 0.5, another image), the
global-batch loss normalisation."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pretrain_helpers import make_batch, split_batch
from pretraining.objectives import (IGNORE, Normalisers, count_targets, example_seed, itm_partner, mask_tokens,
                                    pretrain_losses)


def test_mask_tokens_follows_berts_recipe():
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 1000, (200_000,), generator=g)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[::4] = True  # [CLS] / [SEP] / padding stand-ins
    inputs, labels = mask_tokens(ids, special, 1000, 3, g)
    chosen = labels != IGNORE
    assert not chosen[special].any() and torch.equal(inputs[special], ids[special])
    assert torch.equal(labels[chosen], ids[chosen])
    assert abs(chosen[~special].float().mean().item() - 0.15) < 0.005
    as_mask = (inputs[chosen] == 3).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    assert abs(as_mask - 0.8) < 0.01 and abs(kept - 0.1) < 0.01  # (a random id rarely hits the original)
    assert abs(1 - as_mask - kept - 0.1) < 0.01
    assert torch.equal(inputs[~chosen], ids[~chosen])


def test_itm_partner_is_another_image_half_the_time_and_seeded():
    image_of = np.repeat(np.arange(10), 3)
    picks = [itm_partner(i % 30, image_of, torch.Generator().manual_seed(example_seed(0, 0, i))) for i in range(4000)]
    swapped = [(i % 30, j) for i, j in enumerate(picks) if j is not None]
    assert abs(len(swapped) / 4000 - 0.5) < 0.03
    assert all(image_of[i] != image_of[j] for i, j in swapped)
    again = [itm_partner(i % 30, image_of, torch.Generator().manual_seed(example_seed(0, 0, i))) for i in range(50)]
    assert again == picks[:50]
    with pytest.raises(ValueError, match="at least two images"):
        for s in range(20):
            itm_partner(0, np.zeros(4, dtype=int), torch.Generator().manual_seed(s))


def test_example_seeds_differ_by_seed_epoch_and_index():
    seeds = {example_seed(s, e, i) for s in range(3) for e in range(3) for i in range(100)}
    assert len(seeds) == 900


class Heads(torch.nn.Module):
    """Linear heads standing in for the model's over given states."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.mlm, self.itm, self.qa = torch.nn.Linear(6, 40), torch.nn.Linear(6, 2), torch.nn.Linear(6, 5)
        self.qa_head = self.qa

    def mlm_logits(self, h):
        return self.mlm(h)

    def itm_logits(self, h):
        return self.itm(h)

    def qa_logits(self, h):
        return self.qa(h)


def test_losses_of_split_batches_sum_to_the_whole_batch_means():
    from types import SimpleNamespace

    heads, batch = Heads(), make_batch(6, seed=2)
    text, pooled = torch.randn(6, 8, 6), torch.randn(6, 6)
    enc = SimpleNamespace(text=text, pooled=pooled)
    whole = pretrain_losses(heads, enc, batch, Normalisers.from_counts(count_targets([batch])))
    chosen = batch["mlm_labels"] != IGNORE
    assert torch.allclose(whole["loss_mlm"], F.cross_entropy(heads.mlm(text[chosen]), batch["mlm_labels"][chosen]))
    assert torch.allclose(whole["loss_itm"], F.cross_entropy(heads.itm(pooled), batch["itm_label"]))
    rows = batch["qa_valid"] & (batch["itm_label"] == 1)
    bce = F.binary_cross_entropy_with_logits(heads.qa(pooled[rows]), batch["qa_target"][rows], reduction="sum")
    assert torch.allclose(whole["loss_qa"], bce / rows.sum())
    parts = [[0, 3, 4], [1, 2, 5]]
    halves = split_batch(batch, parts)
    counts = count_targets(halves)
    total = sum(pretrain_losses(heads, SimpleNamespace(text=text[p], pooled=pooled[p]), h,
                                Normalisers.from_counts(counts))["loss"] for p, h in zip(parts, halves))
    assert torch.allclose(total, whole["loss"])
    off = pretrain_losses(heads, enc, batch, Normalisers.from_counts(count_targets([batch])), qa_weight=0.0)
    assert off["loss_qa"] == 0 and torch.allclose(off["loss"], whole["loss_mlm"] + whole["loss_itm"])
