"""One optimiser step of CLIP-ViLp over a global batch, and the held-out evaluation.

:func:`train_step` takes this process's micro-batches of one global batch (per-device batch x
gradient-accumulation steps; the other processes hold the rest), normalises every loss by the
global batch's counts (:class:`pretraining.objectives.Normalisers`), back-propagates each
micro-batch (gradients synchronised only on the last one, ``no_sync`` before), and steps both
optimisers. With dropout off, the parameters after it equal those of one process taking the whole
global batch at once (up to float summation order): ``tests/test_pretraining_ddp.py`` checks it.
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

from training.distributed import DistInfo, all_reduce_sum

from .examples import MODEL_KEYS, to_device
from .objectives import IGNORE, Normalisers, count_targets, pretrain_losses, qa_rows


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when ``amp``; nothing on CPUs."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return nullcontext()


def model_inputs(batch: dict, num_cells: int | None) -> dict:
    """The keyword arguments of ``CLIPViLp.forward`` in a batch."""
    return {**{k: batch[k] for k in MODEL_KEYS if k in batch}, "num_cells": num_cells}


def train_step(model, module, micro_batches: list[dict], optimisers, info: DistInfo, qa_weight: float,
               num_cells: int | None, amp: bool = True) -> dict[str, float]:
    """One update from this process's ``micro_batches`` of the global batch.

    Args:
        model: what runs the forward pass (the DDP wrapper, or the model itself in one process).
        module: the model itself (its heads).
        optimisers: :class:`pretraining.optim.Optimisers`.
        qa_weight: 0 before ``--qa-from-epoch``, else 1.

    Returns:
        global-batch figures: ``loss``, ``loss_mlm``, ``loss_itm``, ``loss_qa``, ``mlm_acc``,
        ``itm_acc``, ``qa_acc`` (NaN when no QA pair was scored), ``grad_norm`` (the global gradient norm
        before clipping; NaN without clipping), plus the learning rates.
    """
    micro_batches = [to_device(b, info.device) for b in micro_batches]
    counts = all_reduce_sum(count_targets(micro_batches), info)
    norm = Normalisers.from_counts(counts, info.world_size)
    sums = torch.zeros(7, dtype=torch.float64)
    for i, batch in enumerate(micro_batches):
        last = i == len(micro_batches) - 1
        sync = nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
        with sync:
            with autocast(info.device, amp):
                encoded = model(**model_inputs(batch, num_cells))
                out = pretrain_losses(module, encoded, batch, norm, qa_weight)
            out["loss"].backward()
        sums += torch.tensor([float(out[k].detach()) for k in ("loss", "loss_mlm", "loss_itm", "loss_qa", "mlm_correct",
                                                       "itm_correct", "qa_correct")], dtype=torch.float64)
    grad_norm = optimisers.step()  # gradients are synchronised here: every process clips by the same norm
    totals = all_reduce_sum([*(sums[:4] / info.world_size).tolist(), *sums[4:].tolist()], info)
    loss, loss_mlm, loss_itm, loss_qa, mlm_ok, itm_ok, qa_ok = totals
    return {"loss": loss, "loss_mlm": loss_mlm, "loss_itm": loss_itm, "loss_qa": loss_qa,
            "mlm_acc": mlm_ok / max(counts[0], 1), "itm_acc": itm_ok / max(counts[1], 1),
            "qa_acc": qa_ok / counts[2] if counts[2] else float("nan"), "grad_norm": grad_norm, **optimisers.lrs()}


@torch.no_grad()
def evaluate(module, loader, device: torch.device, num_cells: int | None, unigram_id: int | None = None,
             amp: bool = True, sources: list[str] | None = None) -> dict[str, float]:
    """Held-out accuracies of ``module`` (unwrapped) in eval mode.

    Args:
        sources: the pairs' source names (``Pairs.sources``): ITM accuracy is also reported per
            source of the sentence shown (``itm_acc/<source>``), since a question ("how many objects
            are in the picture?") can be true of any image where a caption rarely is.

    Returns:
        ``itm_acc`` over all pairs (half of them mismatched), ``itm_acc/<source>`` for each source
        shown, ``mlm_acc`` over the masked tokens,
        ``mlm_unigram_acc``: the accuracy of always predicting ``unigram_id`` (the most frequent
        training token) at the same masked positions, ``qa_acc`` over the scored QA pairs, and the
        counts ``pairs``, ``masked``.
    """
    was_training = module.training
    module.eval()
    ok = {"itm": 0, "mlm": 0, "uni": 0, "qa": 0}
    n = {"itm": 0, "mlm": 0, "qa": 0}
    by_source_ok, by_source_n = {}, {}
    for batch in loader:
        batch = to_device(batch, device)
        with autocast(device, amp):
            enc = module(**model_inputs(batch, num_cells))
            labels = batch["mlm_labels"]
            chosen = labels != IGNORE
            mlm = module.mlm_logits(enc.text[chosen]).argmax(-1)
            itm = module.itm_logits(enc.pooled).argmax(-1)
            qa = module.qa_logits(enc.pooled).argmax(-1) if module.qa_head is not None else None
        ok["mlm"] += int((mlm == labels[chosen]).sum())
        ok["uni"] += int((labels[chosen] == unigram_id).sum()) if unigram_id is not None else 0
        n["mlm"] += int(chosen.sum())
        itm_ok = itm == batch["itm_label"]
        ok["itm"] += int(itm_ok.sum())
        n["itm"] += int(itm.numel())
        if sources is not None and "text_source" in batch:
            for s in batch["text_source"].unique().tolist():
                shown = batch["text_source"] == s
                by_source_ok[s] = by_source_ok.get(s, 0) + int((itm_ok & shown).sum())
                by_source_n[s] = by_source_n.get(s, 0) + int(shown.sum())
        if qa is not None:
            rows = qa_rows(batch)
            ok["qa"] += int(((qa == batch["qa_target"].argmax(1)) & rows).sum())
            n["qa"] += int(rows.sum())
    module.train(was_training)
    per_source = {f"itm_acc/{sources[s]}": by_source_ok[s] / by_source_n[s] for s in sorted(by_source_n)}
    return {"itm_acc": ok["itm"] / max(n["itm"], 1), **per_source, "mlm_acc": ok["mlm"] / max(n["mlm"], 1),
            "mlm_unigram_acc": ok["uni"] / max(n["mlm"], 1),
            "qa_acc": ok["qa"] / n["qa"] if n["qa"] else float("nan"), "pairs": n["itm"], "masked": n["mlm"]}


def most_frequent_token(tokenizer, texts, limit: int = 100_000) -> int:
    """The most frequent non-special token id over (the first ``limit`` of) the training ``texts``:
    the unigram-frequency baseline of masked-token prediction."""
    counts = torch.zeros(tokenizer.vocab_size, dtype=torch.int64)
    special = torch.tensor(sorted(tokenizer.special_ids), dtype=torch.int64)
    texts = list(texts[:limit]) if hasattr(texts, "__getitem__") else list(texts)[:limit]
    for start in range(0, len(texts), 4096):
        ids, _ = tokenizer.encode(texts[start:start + 4096])
        ids = ids[~torch.isin(ids, special)]
        counts += torch.bincount(ids, minlength=tokenizer.vocab_size)
    return int(counts.argmax())
