"""The follower's IL loss with label smoothing over a step's candidates (``--label-smoothing``)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from agents.config import InvalidSettingError, TrainConfig
from agents.rollout import imitation_loss

INF = float("inf")


def step_logits():
    """Three rows: 3 candidates of 5 slots, 5 of 5, and an ended episode (2 candidates, no target)."""
    logits = torch.tensor([[1.0, -0.5, 2.0, -INF, -INF],
                           [0.3, 0.1, -1.0, 0.7, 0.0],
                           [0.5, -2.0, -INF, -INF, -INF]], requires_grad=True)
    return logits, torch.tensor([2, 0, -100])


def test_without_smoothing_it_is_the_cross_entropy_of_the_teacher_action():
    logits, target = step_logits()
    loss = imitation_loss(logits, target)
    assert torch.equal(loss, F.cross_entropy(logits, target, ignore_index=-100, reduction="none"))


def test_smoothing_spreads_over_the_candidates_only_and_ended_rows_cost_nothing():
    logits, target = step_logits()
    s = 0.2
    loss = imitation_loss(logits, target, s)
    for row, n in ((0, 3), (1, 5)):
        logp = torch.log_softmax(logits[row, :n], dim=0)
        expected = (1 - s) * -logp[target[row]] + s * -logp.mean()
        assert float(loss[row]) == pytest.approx(float(expected), rel=1e-6)
    assert float(loss[2]) == 0.0
    loss.sum().backward()
    g = logits.grad
    assert torch.isfinite(g).all()
    assert (g[0, 3:] == 0).all() and (g[2] == 0).all()
    # the smoothed target is (1 - s) one-hot + s uniform over the row's candidates: p - target
    p = torch.softmax(logits[0, :3].detach(), dim=0)
    smoothed = torch.full((3,), s / 3)
    smoothed[2] += 1 - s
    torch.testing.assert_close(g[0, :3], p - smoothed)
    assert math.isclose(float(g[1].sum()), 0.0, abs_tol=1e-6)


def test_label_smoothing_is_checked_and_read_by_the_follower_modes_only():
    with pytest.raises(InvalidSettingError, match="--label-smoothing must be in"):
        TrainConfig(label_smoothing=1.0).check()
    with pytest.raises(InvalidSettingError, match="--label-smoothing must be in"):
        TrainConfig(label_smoothing=-0.1).check()
    with pytest.raises(InvalidSettingError, match="--label-smoothing is read by --mode follower and bt only"):
        TrainConfig(mode="speaker").check_given({"label_smoothing"})
    TrainConfig(mode="bt").check_given({"label_smoothing"})
