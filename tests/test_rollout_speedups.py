"""Each rollout speed-up changes the speed only: one iteration with and without it, from the same
weights and random stream, gives the same per-episode losses, gradients, actions and random state."""
from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from env_fixtures import write_data_root

from agents.config import TrainConfig
from agents.rollout import Speedups, greedy_trajectories
from agents.trainer import Trainer

SMALL = dict(allow_random_features=True, hidden=32, word_embedding=16, action_embedding=8, progress=False)


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    root = write_data_root(tmp_path_factory.mktemp("data"))
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(root), out=str(root.parent / "run"), batch_size=9,
                      seed=3, eval_splits="val_unseen", threads=1, **SMALL)
    return Trainer(cfg)


def one_iteration(trainer: Trainer, speedups: Speedups, snap, env_mask=None, threads: int = 2) -> dict:
    """IL batch + A2C batch from the snapshot ``snap``, as the trainer's iteration forms them
    (:meth:`Trainer.backward_step`, with ``threads`` torch threads: two or more let
    ``concurrent_rollouts`` run the batches side by side): losses, per-episode losses, grads,
    paths, RNG."""
    weights, rng = snap
    trainer.follower.load_state_dict(weights)
    torch.set_rng_state(rng)
    trainer.speedups = speedups
    trainer.follower.train()
    trainer.follower.zero_grad(set_to_none=True)
    episodes = np.arange(9)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = trainer.backward_step(trainer.nav, episodes, episodes[::-1].copy(), 1.0, env_mask=env_mask)
    finally:
        torch.set_num_threads(before)
    il, rl = trainer.last_rollouts["il"], trainer.last_rollouts["rl"]
    navs = [trainer.nav] + ([trainer.second_nav(trainer.nav)] if trainer.separate_rl_batch else [])
    return {"losses": {k: float(v.detach()) for k, v in out.items()}, "row_steps": (il.row_steps, rl.row_steps),
            "episodes": {"il": il.episode_losses["il"], "rl": rl.episode_losses["rl"]},
            "grads": {k: p.grad.clone() for k, p in trainer.follower.named_parameters() if p.grad is not None},
            "paths": [nav.trajectory(b) for nav in navs for b in range(9)], "rng": torch.get_rng_state()}


def assert_same(a: dict, b: dict) -> None:
    assert a["paths"] == b["paths"]  # the same sampled actions
    assert torch.equal(a["rng"], b["rng"])  # the same random numbers drawn
    for name in ("il", "rl"):
        torch.testing.assert_close(a["episodes"][name], b["episodes"][name], rtol=1e-5, atol=1e-6)
    assert a["losses"] == pytest.approx(b["losses"], rel=1e-5, abs=1e-6)
    assert a["grads"].keys() == b["grads"].keys()
    for k in a["grads"]:
        torch.testing.assert_close(a["grads"][k], b["grads"][k], rtol=1e-4, atol=1e-5, msg=lambda m: k + ": " + m)


@pytest.mark.parametrize("switch", [f.name for f in dataclasses.fields(Speedups)])
def test_each_speedup_gives_the_same_losses_and_gradients(trainer, switch):
    torch.manual_seed(11)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    off = one_iteration(trainer, Speedups.none(), snap)
    on = one_iteration(trainer, dataclasses.replace(Speedups.none(), **{switch: True}), snap)
    if switch == "active_rows":  # episodes ended at different steps, so rows were left out
        assert on["row_steps"][0] < off["row_steps"][0] and on["row_steps"][1] < off["row_steps"][1]
    assert trainer.side_by_side == (switch == "concurrent_rollouts")  # the last call: `on`
    assert_same(on, off)
    assert off["losses"]["loss_rl"] != 0.0 and off["episodes"]["rl"].abs().min() > 0  # A2C on every episode


def test_all_speedups_together_give_the_same_iteration(trainer):
    torch.manual_seed(12)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    assert_same(one_iteration(trainer, Speedups(), snap), one_iteration(trainer, Speedups.none(), snap))


def test_concurrent_rollouts_need_two_threads_and_give_the_same_iteration_on_one(trainer):
    """With one torch thread the two batches run one after the other (the thread budget holds),
    with the numbers of the side-by-side run."""
    torch.manual_seed(16)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    one = one_iteration(trainer, Speedups(), snap, threads=1)
    assert not trainer.side_by_side
    two = one_iteration(trainer, Speedups(), snap, threads=2)
    assert trainer.side_by_side
    assert_same(one, two)


def test_an_error_in_the_side_by_side_rollout_reaches_the_caller_and_restores_the_threads():
    from agents.trainer import run_side_by_side

    before = torch.get_num_threads()

    def fails():
        raise KeyError("a2c")

    with pytest.raises(KeyError, match="a2c"):
        run_side_by_side(lambda: torch.get_num_threads(), fails, 1)
    assert torch.get_num_threads() == before
    assert run_side_by_side(torch.get_num_threads, torch.get_num_threads, 1) == (1, 1)
    assert torch.get_num_threads() == before


def test_each_device_gets_its_switches_and_the_cuda_set_computes_the_same(trainer, tmp_path):
    """The trainer uses the switches that pay on its device; CUDA's set (rows of running episodes
    only) gives the iteration of the original's per-row computation, here checked on the CPU."""
    assert Trainer(dataclasses.replace(trainer.cfg, out=str(tmp_path / "run"))).speedups == Speedups()
    assert Speedups.for_device("cpu") == Speedups()
    cuda = Speedups.for_device("cuda")
    assert cuda == dataclasses.replace(Speedups.none(), active_rows=True)
    torch.manual_seed(15)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    assert_same(one_iteration(trainer, cuda, snap), one_iteration(trainer, Speedups.none(), snap))


def test_label_smoothing_gives_the_same_iteration_with_and_without_the_speedups(trainer):
    torch.manual_seed(14)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    plain = one_iteration(trainer, Speedups(), snap)
    trainer.cfg.label_smoothing = 0.2
    try:
        fast, slow = one_iteration(trainer, Speedups(), snap), one_iteration(trainer, Speedups.none(), snap)
    finally:
        trainer.cfg.label_smoothing = 0.0
    assert_same(fast, slow)
    assert fast["losses"]["loss_ml"] != pytest.approx(plain["losses"]["loss_ml"], rel=1e-3)  # the trainer passed it on


def test_environmental_dropout_masks_follow_their_rows(trainer):
    """Back-translation's augmented batches carry one feature mask per episode (row)."""
    from agents.envdrop import EnvDropout

    torch.manual_seed(13)
    mask = EnvDropout(0.4).sample(9, trainer.bank.dim, "cpu")
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    assert_same(one_iteration(trainer, Speedups(), snap, mask), one_iteration(trainer, Speedups.none(), snap, mask))


def test_greedy_decoding_is_the_same_with_active_rows(trainer):
    world = trainer.val_worlds["val_unseen"]
    fast = greedy_trajectories(trainer.follower, trainer.bank, world, 2, speedups=Speedups())
    slow = greedy_trajectories(trainer.follower, trainer.bank, world, 2, speedups=Speedups.none())
    assert fast == slow


def test_packed_bilstm_equals_nn_lstm_outputs_and_gradients():
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from agents.packed_lstm import packed_bilstm

    torch.manual_seed(0)
    lstm = torch.nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    x = torch.randn(4, 7, 6)
    lengths = torch.tensor([3, 7, 1, 5])  # unsorted, one of length 1
    results = []
    for run in (lambda p: lstm(p), lambda p: packed_bilstm(lstm, p)):
        lstm.zero_grad()
        xg = x.clone().requires_grad_(True)
        out, (h, c) = run(pack_padded_sequence(xg, lengths, batch_first=True, enforce_sorted=False))
        padded = pad_packed_sequence(out, batch_first=True)[0]
        (padded.pow(2).sum() + (h * torch.arange(5.0)).sum() + c.pow(3).sum()).backward()
        results.append([padded, h, c, xg.grad] + [p.grad for p in lstm.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_pad_packed_equals_pad_packed_sequence_values_layout_and_gradient(enforce_sorted):
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from agents.packed_lstm import pad_packed

    torch.manual_seed(1)
    lengths = torch.tensor([7, 5, 3, 1] if enforce_sorted else [3, 7, 1, 5])
    x = torch.randn(4, 7, 3)
    weight = torch.randn(4, 7, 3)
    results = []
    for pad in (lambda p: pad_packed_sequence(p, batch_first=True)[0], pad_packed):
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=enforce_sorted)
        data = packed.data.clone().requires_grad_(True)
        out = pad(packed._replace(data=data))
        (out * weight).sum().backward()
        results.append((out, out.stride(), data.grad))
    (a, sa, ga), (b, sb, gb) = results
    assert torch.equal(a, b) and sa == sb  # same memory layout: a dropout mask drawn on it lands alike
    assert torch.equal(ga, gb)


@pytest.mark.parametrize("row_scores", [False, True])
def test_step_grads_give_autograds_weight_and_context_gradients(row_scores):
    """Deferred gradients of linear maps and context attention over steps with shrinking rows,
    against autograd through the original's attention (logits as context times query column)."""
    from agents.attention import SoftDotAttention
    from agents.step_grads import StepGrads

    torch.manual_seed(2)
    B, L, H = 5, 6, 4
    lin = torch.nn.Linear(H, H)
    ctx0 = torch.randn(B, L, H)
    mask = torch.zeros(B, L, dtype=torch.bool)
    mask[1, 4:] = True
    held_per_step = [torch.arange(B), torch.tensor([0, 2, 3, 4]), torch.tensor([2, 4])]
    results = []
    for deferred in (False, True):
        lin.zero_grad()
        ctx = ctx0.clone().requires_grad_(True)
        grads = StepGrads({"lin": (lin.weight, lin.bias)}, ctx) if deferred else None
        h = torch.randn(B, H, generator=torch.Generator().manual_seed(3))
        loss = 0.0
        for rows in held_per_step:
            q = lin(h[rows]) if grads is None else grads.linear("lin", h[rows])
            if grads is None:
                w, _ = SoftDotAttention.attend(q, ctx[rows], mask[rows], row_scores=False)
            else:
                grads.rows = rows
                w = grads.attend(q, ctx.detach()[rows], mask[rows], row_scores)
            loss = loss + (w * torch.arange(1.0, H + 1)).pow(2).sum()
            h = h.clone()
            h[rows] = torch.tanh(w)
        loss.backward()
        results.append((float(loss.detach()), lin.weight.grad.clone(), lin.bias.grad.clone(), ctx.grad.clone()))
    (la, *ga), (lb, *gb) = results
    assert la == pytest.approx(lb, rel=1e-6)
    for a, b in zip(ga, gb):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert ga[2].abs().sum() > 0 and ga[2][1, 4:].abs().sum() == 0  # masked context entries get nothing


def test_sampled_il_with_a2c_gives_the_same_iteration(trainer):
    """``--il-feedback sample`` (one sampled rollout carries the IL and the A2C loss) under every speed-up."""
    torch.manual_seed(14)
    snap = (copy.deepcopy(trainer.follower.state_dict()), torch.get_rng_state())
    trainer.cfg.il_feedback = "sample"
    try:
        on, off = one_iteration(trainer, Speedups(), snap), one_iteration(trainer, Speedups.none(), snap)
    finally:
        trainer.cfg.il_feedback = "teacher"
    assert on["row_steps"][0] < off["row_steps"][0]  # rows of stopped episodes were left out
    assert off["losses"]["loss_ml"] > 0 and off["losses"]["loss_rl"] != 0.0
    assert_same(on, off)


def test_dropout_masks_have_torch_dropouts_distribution():
    """``agents.rows``' rand-drawn masks: entries 0 or 1 / (1 - p), kept with probability 1 - p;
    p = 1 drops everything (no 0 * inf); the angle channels are never dropped."""
    from torch import nn

    from agents.rows import drop_visual, dropout, keep_mask

    torch.manual_seed(5)
    mask = keep_mask((400, 500), 0.3, torch.empty(0))
    values = torch.unique(mask).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / 0.7)
    assert abs(float((mask > 0).float().mean()) - 0.7) < 0.005  # 200k draws: 5 standard errors
    x = torch.randn(4, 3, 10)
    assert torch.equal(dropout(x, nn.Dropout(1.0)), torch.zeros_like(x))
    dropped = drop_visual(x, nn.Dropout(1.0), 7)
    assert torch.equal(dropped[..., :7], torch.zeros(4, 3, 7)) and torch.equal(dropped[..., 7:], x[..., 7:])
    assert torch.equal(dropout(x, nn.Dropout(0.5).eval()), x)
