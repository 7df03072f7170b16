"""Answers of a model on a split, the official-format results file and their scores."""
from __future__ import annotations

import torch

from .answers import AnswerVocab
from .data import QAExample
from .metric import index_results, vqa_accuracy


def autocast(device: torch.device):
    """bf16 autocast on a GPU, nothing on the CPU."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def model_inputs(batch: dict, device: torch.device, visual: str = "real", positions: bool = True):
    """(tokens, grid, mask, pos) on ``device``, the grid as float32 (cast there, after the copy);
    ``visual="zero"`` zeroes the grid (question-only control)."""
    grid = batch["grid"].to(device, non_blocking=True).float()
    if visual == "zero":
        grid = torch.zeros_like(grid)
    pos = batch["pos"].to(device, non_blocking=True) if positions else None
    return batch["tokens"].to(device), grid, batch["mask"].to(device), pos


@torch.no_grad()
def predict(model, loader, device: torch.device, visual: str = "real", positions: bool = True) -> dict[int, int]:
    """Dataset index -> predicted answer label (arg-max of the logits) over ``loader``."""
    model.eval()
    out = {}
    for batch in loader:
        with autocast(device):
            logits = model(*model_inputs(batch, device, visual, positions))
        for i, label in zip(batch["index"].tolist(), logits.argmax(dim=1).tolist()):
            out[i] = label
    return out


def results(examples: list[QAExample], answers: AnswerVocab, labels: dict[int, int]) -> list[dict]:
    """The official results list ``[{"question_id", "answer"}]`` in example order."""
    return [{"question_id": ex.question_id, "answer": answers.answers[labels[i]]} for i, ex in enumerate(examples)]


def score(examples: list[QAExample], result_list: list[dict]) -> dict:
    """Scores of results against their examples.

    VQA v2 examples (ten answer records): the official accuracy (:func:`vqa.metric.vqa_accuracy`,
    without ``perQuestion``). Others (GQA, LXMERT): ``{"overall": 100 x mean label score of the
    predicted answer}``, exact-match accuracy for GQA. Empty when the split has no answers.
    """
    if not examples or not any(ex.answers or ex.labels for ex in examples):
        return {}
    predicted = index_results(result_list, [ex.question_id for ex in examples])
    if all(ex.answers for ex in examples):
        anns = [{"question_id": ex.question_id, "question_type": ex.question_type, "answer_type": ex.answer_type,
                 "answers": ex.answers} for ex in examples]
        out = vqa_accuracy(anns, predicted)
        out.pop("perQuestion")
        return out
    return {"overall": round(100 * sum(ex.labels.get(predicted[ex.question_id], 0.0) for ex in examples) / len(examples), 2)}
