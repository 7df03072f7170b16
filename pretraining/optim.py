"""The two optimisers of CLIP-ViLp and their schedules (paper §4; LXMERT's Transformer recipe).

* Transformer (everything outside the backbone): AdamW, betas (0.9, 0.999), eps 1e-6, weight decay
  0.01 except biases and LayerNorm weights (BERT), peak learning rate 1e-4 for RN50 and 5e-5 for
  RN50x4 (:data:`PEAK_LR`), linear warm-up over the first ``warmup`` fraction of the steps then
  linear decay to 0 (:func:`warmup_linear`; the warm-up counts the step being taken, so the first
  step already moves the weights).
* Backbone: SGD, learning rate 3e-3, momentum 0 and weight decay 4e-4 (the released code's
  ``--sgd_momentum 0.0``, ``--sgd_weight_decay`` default), x0.1 at epochs 12 and 17 (:func:`step_decay`).
  ``freeze_backbone`` (the Table 8 ablation) builds no SGD and fixes the backbone, BatchNorm included.
* Before each update the gradient of every trained parameter (both shares together) is clipped to a
  global L2 norm of ``max_grad_norm`` (the released code's ``clip_grad_norm_(model.parameters(),
  max_grad_norm=1.0)``; 0 turns it off).

:class:`Optimisers` steps both with their schedulers and saves / restores all four states.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .backbone import BN_POLICIES, BackboneError

#: Peak AdamW learning rate per backbone (paper): others default to RN50's.
PEAK_LR = {"clip_r50": 1e-4, "clip_r101": 1e-4, "clip_r50x4": 5e-5}
DEFAULT_PEAK_LR = 1e-4
BACKBONE_LR = 3e-3
BACKBONE_MOMENTUM = 0.0
BACKBONE_WEIGHT_DECAY = 4e-4
BACKBONE_MILESTONES = (12, 17)
MAX_GRAD_NORM = 1.0


def peak_lr(encoder: str, lr: float = 0.0) -> float:
    """``lr`` when given (> 0), else the paper's peak for ``encoder``."""
    return lr if lr > 0 else PEAK_LR.get(encoder, DEFAULT_PEAK_LR)


def warmup_linear(step: int, total: int, warmup_steps: int) -> float:
    """Learning-rate factor of optimiser step ``step`` (0-based): (step + 1) / warmup_steps during
    warm-up, then linear decay reaching 0 at ``total``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total - step) / max(1, total - warmup_steps))


def step_decay(step: int, steps_per_epoch: int, milestones=BACKBONE_MILESTONES, gamma: float = 0.1) -> float:
    """Factor ``gamma ** k`` where k milestones (epochs) have been reached at optimiser step ``step``."""
    epoch = step // max(1, steps_per_epoch)
    return gamma ** sum(epoch >= m for m in milestones)


def parameter_groups(params_with_names, weight_decay: float) -> list[dict]:
    """AdamW groups: decay for matrices, none for biases and LayerNorm / 1-d parameters (BERT)."""
    decay, plain = [], []
    for _, p in params_with_names:
        if p.requires_grad:
            (decay if p.ndim >= 2 else plain).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


@dataclass
class Optimisers:
    """AdamW (+ scheduler) for the Transformer and SGD (+ scheduler) for the backbone (None when frozen)."""

    adamw: torch.optim.Optimizer
    adamw_schedule: torch.optim.lr_scheduler.LRScheduler
    sgd: torch.optim.Optimizer | None
    sgd_schedule: torch.optim.lr_scheduler.LRScheduler | None
    max_grad_norm: float = MAX_GRAD_NORM

    def parameters(self) -> list[torch.Tensor]:
        """Every parameter either optimiser updates."""
        groups = self.adamw.param_groups + (self.sgd.param_groups if self.sgd is not None else [])
        return [p for g in groups for p in g["params"]]

    def step(self) -> float:
        """Clip the global gradient norm (when ``max_grad_norm`` > 0), one update of both optimisers,
        then their schedules; gradients are zeroed (set to None).

        Returns:
            the global L2 norm of the gradients before clipping (NaN when clipping is off).
        """
        norm = float("nan")
        if self.max_grad_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.parameters(), self.max_grad_norm))
        self.adamw.step()
        self.adamw_schedule.step()
        if self.sgd is not None:
            self.sgd.step()
            self.sgd_schedule.step()
        self.zero_grad()
        return norm

    def zero_grad(self) -> None:
        self.adamw.zero_grad(set_to_none=True)
        if self.sgd is not None:
            self.sgd.zero_grad(set_to_none=True)

    def lrs(self) -> dict[str, float]:
        """Current learning rates: ``lr_transformer``, ``lr_backbone`` (0 when frozen)."""
        return {"lr_transformer": self.adamw.param_groups[0]["lr"],
                "lr_backbone": self.sgd.param_groups[0]["lr"] if self.sgd is not None else 0.0}

    def state_dict(self) -> dict:
        out = {"adamw": self.adamw.state_dict(), "adamw_schedule": self.adamw_schedule.state_dict()}
        if self.sgd is not None:
            out.update(sgd=self.sgd.state_dict(), sgd_schedule=self.sgd_schedule.state_dict())
        return out

    def load_state_dict(self, state: dict) -> None:
        self.adamw.load_state_dict(state["adamw"])
        self.adamw_schedule.load_state_dict(state["adamw_schedule"])
        if self.sgd is not None:
            self.sgd.load_state_dict(state["sgd"])
            self.sgd_schedule.load_state_dict(state["sgd_schedule"])


def build_optimisers(model, total_steps: int, steps_per_epoch: int, lr: float, warmup: float = 0.05,
                     weight_decay: float = 0.01, backbone_lr: float = BACKBONE_LR, momentum: float = BACKBONE_MOMENTUM,
                     milestones=BACKBONE_MILESTONES, freeze_backbone: bool = False,
                     backbone_weight_decay: float = BACKBONE_WEIGHT_DECAY,
                     max_grad_norm: float = MAX_GRAD_NORM) -> Optimisers:
    """The two optimisers of ``model`` (a :class:`pretraining.model.CLIPViLp`, unwrapped).

    Args:
        total_steps: optimiser steps of the whole run (the decay reaches 0 there).
        steps_per_epoch: optimiser steps per epoch (the backbone's milestones are epochs).
        lr: AdamW's peak learning rate.
        warmup: fraction of ``total_steps`` warming up.
        momentum, backbone_weight_decay: the backbone SGD's.
        max_grad_norm: global gradient-norm clip before every update (0: none).
    """
    named = [(n, p) for n, p in model.named_parameters() if not n.startswith("backbone.")]
    adamw = torch.optim.AdamW(parameter_groups(named, weight_decay), lr=lr, betas=(0.9, 0.999), eps=1e-6)
    warm = max(1, int(round(warmup * total_steps)))
    adamw_schedule = torch.optim.lr_scheduler.LambdaLR(adamw, lambda s: warmup_linear(s, total_steps, warm))
    sgd = sgd_schedule = None
    if model.backbone is not None:
        if freeze_backbone:
            model.backbone.requires_grad_(False)
        else:
            trained = [p for p in model.backbone.parameters() if p.requires_grad]
            sgd = torch.optim.SGD(trained, lr=backbone_lr, momentum=momentum, weight_decay=backbone_weight_decay)
            sgd_schedule = torch.optim.lr_scheduler.LambdaLR(
                sgd, lambda s: step_decay(s, steps_per_epoch, milestones))
    return Optimisers(adamw, adamw_schedule, sgd, sgd_schedule, max_grad_norm)


def apply_bn_policy(model, policy: str, freeze_backbone: bool = False, world_size: int = 1,
                    device: torch.device | str = "cpu") -> None:
    """Set the backbone's BatchNorm policy before building optimisers and wrapping in DDP.

    ``sync`` converts the backbone's BatchNorm layers to ``torch.nn.SyncBatchNorm`` when
    ``world_size > 1`` (statistics over all processes; torch supports it on GPUs only). A frozen
    backbone always has frozen BatchNorm.

    Raises:
        BackboneError: an unknown policy, or ``sync`` across processes on CPUs.
    """
    backbone = model.backbone
    if backbone is None:
        return
    if policy not in BN_POLICIES:
        raise BackboneError(f"unknown BatchNorm policy {policy!r} (choose from {', '.join(BN_POLICIES)})")
    backbone.set_bn_policy("frozen" if freeze_backbone else policy)
    if policy == "sync" and not freeze_backbone and world_size > 1:
        if torch.device(device).type == "cpu":
            raise BackboneError("--bn sync needs GPUs (torch's SyncBatchNorm does not run on CPUs); use --bn train "
                                "or --bn frozen on CPU processes")
        backbone.trunk = torch.nn.SyncBatchNorm.convert_sync_batchnorm(backbone.trunk)
