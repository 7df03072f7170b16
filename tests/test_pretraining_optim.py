"""The two optimisers: schedules, who updates what, BatchNorm policies, overfitting a few pairs."""
import pytest
import torch

from pretrain_helpers import make_batch, tiny_model
from pretraining.backbone import BackboneError
from pretraining.optim import apply_bn_policy, build_optimisers, peak_lr, step_decay, warmup_linear
from pretraining.step import evaluate, train_step
from training.distributed import DistInfo

ONE = DistInfo(0, 1, 0, torch.device("cpu"))


def test_schedules():
    assert [warmup_linear(s, 100, 10) for s in (0, 4, 9)] == [0.1, 0.5, 1.0]
    assert warmup_linear(10, 100, 10) == 1.0 and warmup_linear(55, 100, 10) == 0.5 and warmup_linear(100, 100, 10) == 0
    assert [step_decay(s, 10) for s in (0, 119, 120, 169, 170, 199)] == [1, 1, 0.1, 0.1, pytest.approx(0.01),
                                                                         pytest.approx(0.01)]
    assert peak_lr("clip_r50") == 1e-4 and peak_lr("clip_r50x4") == 5e-5 and peak_lr("clip_r50", 3e-4) == 3e-4


def _one_step(tiny_clip_rn, **options):
    """One train_step of a tiny model; returns (model, optimisers, out, params before, grads before clipping)."""
    model = tiny_model(tiny_clip_rn)
    apply_bn_policy(model, "frozen")
    opt = build_optimisers(model, total_steps=100, steps_per_epoch=10, lr=1e-3, warmup=0.01, **options)
    grads = {}
    for name, p in model.named_parameters():
        if p.requires_grad:
            p.register_post_accumulate_grad_hook(lambda t, name=name: grads.__setitem__(name, t.grad.clone()))
    before = {n: p.detach().clone() for n, p in [*model.named_parameters(), *model.named_buffers()]}
    model.train()
    out = train_step(model, model, [make_batch(6)], opt, ONE, qa_weight=1.0, num_cells=4)
    return model, opt, out, before, grads


def test_one_step_moves_the_backbone_by_sgd_and_the_transformer_by_adamw(tiny_clip_rn):
    model, opt, out, before, grads = _one_step(tiny_clip_rn, max_grad_norm=0.0)
    assert {id(p) for p in opt.sgd.param_groups[0]["params"]} == {id(p) for p in model.backbone.parameters()
                                                                 if p.requires_grad}
    assert not {id(p) for g in opt.adamw.param_groups for p in g["params"]} & {id(p) for p in model.backbone_parameters()}
    conv, head = "backbone.trunk.layer4.0.conv2.weight", "itm_head.weight"
    params = dict(model.named_parameters())
    assert out["lr_backbone"] == 3e-3 and out["grad_norm"] != out["grad_norm"]  # no clipping: NaN
    # SGD as released: momentum 0, weight decay 4e-4 (added to the gradient)
    torch.testing.assert_close(params[conv].detach(), before[conv] - 3e-3 * (grads[conv] + 4e-4 * before[conv]))
    g, p0 = grads[head], before[head]
    adam = p0 * (1 - 1e-3 * 0.01) - 1e-3 * g / (g.abs() + 1e-6)  # AdamW's first step: decay, then lr x sign
    torch.testing.assert_close(params[head].detach(), adam, rtol=0, atol=1e-6)
    bn = model.backbone.trunk.bn1
    assert torch.equal(bn.running_mean, before["backbone.trunk.bn1.running_mean"]) and not bn.training  # frozen


def test_the_global_gradient_norm_is_clipped_over_both_optimisers(tiny_clip_rn):
    """The released code clips ``model.parameters()`` together to norm 1 before stepping both optimisers."""
    model, opt, out, before, grads = _one_step(tiny_clip_rn, max_grad_norm=0.05)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
    assert norm > 0.05 and out["grad_norm"] == pytest.approx(float(norm), rel=1e-5)
    scale = 0.05 / (float(norm) + 1e-6)  # torch's clip_grad_norm_
    conv = "backbone.trunk.layer4.0.conv2.weight"
    expected = before[conv] - 3e-3 * (grads[conv] * scale + 4e-4 * before[conv])
    torch.testing.assert_close(dict(model.named_parameters())[conv].detach(), expected)
    # a norm under the threshold is left alone
    _, _, out, _, _ = _one_step(tiny_clip_rn, max_grad_norm=1e6)
    assert out["grad_norm"] < 1e6


def test_frozen_backbone_and_batchnorm_policies(tiny_clip_rn):
    model = tiny_model(tiny_clip_rn)
    apply_bn_policy(model, "train", freeze_backbone=True)
    opt = build_optimisers(model, 10, 5, 1e-3, freeze_backbone=True)
    assert opt.sgd is None and not any(p.requires_grad for p in model.backbone.parameters())
    before = [p.clone() for p in model.backbone.parameters()]
    train_step(model.train(), model, [make_batch(4)], opt, ONE, 1.0, 4)
    assert all(torch.equal(a, b) for a, b in zip(before, model.backbone.parameters()))
    trained = tiny_model(tiny_clip_rn)
    apply_bn_policy(trained, "train")
    trained.train()
    assert trained.backbone.trunk.bn1.training and trained.backbone.trunk.bn1.weight.requires_grad
    with pytest.raises(BackboneError, match="needs GPUs"):
        apply_bn_policy(tiny_model(tiny_clip_rn), "sync", world_size=2, device="cpu")
    with pytest.raises(BackboneError, match="unknown BatchNorm policy"):
        apply_bn_policy(trained, "moving")


def test_overfits_a_handful_of_pairs(tiny_clip_rn):
    torch.set_num_threads(1)
    model = tiny_model(tiny_clip_rn)
    apply_bn_policy(model, "frozen")
    opt = build_optimisers(model, total_steps=1000, steps_per_epoch=1000, lr=3e-3, warmup=0.001, weight_decay=0.0)
    batch = make_batch(6, seed=4)
    model.train()
    for _ in range(120):  # with the released recipe's gradient clipping (norm 1)
        out = train_step(model, model, [batch], opt, ONE, qa_weight=1.0, num_cells=None)
    scores = evaluate(model, [batch], torch.device("cpu"), None)
    assert scores["mlm_acc"] == 1.0 and scores["itm_acc"] == 1.0, (scores, out)
