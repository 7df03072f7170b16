"""Batched follower rollouts on a :class:`envs.batch.NavBatch`: IL and A2C losses, greedy decoding.

One decoder call per time step handles the whole batch; the only per-step host/device traffic is
the index-mode observation (integers and four angles per candidate) and the chosen actions.
Matches R2R-EnvDrop ``Seq2SeqAgent.rollout``: the IL loss is the summed cross-entropy against the
teacher (shortest-path) action divided by the batch size; the RL loss is A2C with discounted
returns (gamma 0.9) bootstrapped from the critic when the episode has not ended, normalised by
the number of valid steps, with an entropy bonus of 0.01.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from envs.batch import NavBatch

from .bank import FeatureBank
from .follower import Follower

FEEDBACKS = ("teacher", "sample", "argmax")


@dataclass
class RolloutResult:
    """What a rollout returns.

    Attributes:
        loss_il: scalar tensor, summed cross-entropy / B (0 when not requested).
        loss_rl: scalar tensor, A2C loss / valid steps (0 when not requested).
        steps: number of decoder steps taken.
        stopped: (B,) bool, True where the agent chose STOP (else truncated).
        stats: floats for logging (``reward``, ``entropy``, ``value``).
    """

    loss_il: torch.Tensor
    loss_rl: torch.Tensor
    steps: int
    stopped: np.ndarray
    stats: dict = field(default_factory=dict)


def rollout(model: Follower, bank: FeatureBank, nav: NavBatch, feedback: str, *, il: bool = False,
            rl: bool = False, env_mask: torch.Tensor | None = None, max_steps: int | None = None,
            gamma: float = 0.9, entropy_coef: float = 0.01, generator: torch.Generator | None = None) -> RolloutResult:
    """Roll the B episodes that ``nav`` was reset to until all stop or ``max_steps`` actions.

    Args:
        feedback: ``"teacher"`` follows the shortest-path actions, ``"sample"`` samples from the
            policy, ``"argmax"`` is greedy decoding.
        il: accumulate the imitation loss (cross-entropy against the teacher action).
        rl: accumulate the A2C loss (needs ``feedback="sample"`` to be on-policy).
        env_mask: (B, D) environmental-dropout mask, or None.
        generator: torch generator for sampling (default: the global one).
    """
    if feedback not in FEEDBACKS:
        raise ValueError(f"feedback must be one of {FEEDBACKS}, got {feedback!r}")
    dev = bank.device
    B, stop_action = nav.B, nav.stop_action
    max_steps = nav.world.cfg.max_episode_steps if max_steps is None else max_steps
    obs = nav.observe("index")
    tokens = torch.as_tensor(obs["instruction"], device=dev)
    lengths = torch.as_tensor(obs["instruction_length"][:, 0], device=dev)
    tokens = tokens[:, : int(lengths.max().clamp(min=1))]
    ctx, ctx_mask, (h, c) = model.encoder(tokens, lengths)
    ended = np.zeros(B, dtype=bool)
    loss_il = torch.zeros((), device=dev)
    log_probs, entropies, hiddens, masks, rewards = [], [], [], [], []
    t = 0
    for t in range(1, max_steps + 1):
        inp = bank.step_inputs(obs, env_mask)
        h, c, logits, _ = model.decoder(inp.action_angles, inp.views, inp.candidates, inp.candidate_mask,
                                        h, c, ctx, ctx_mask)
        teacher = nav.teacher_actions()
        if il:
            target = torch.as_tensor(np.where(ended, -100, teacher), device=dev)
            loss_il = loss_il + F.cross_entropy(logits, target, ignore_index=-100, reduction="sum")
        if feedback == "teacher":
            env_action = teacher.astype(np.int64)
        else:
            if feedback == "sample":
                dist = torch.distributions.Categorical(logits=logits)
                a = torch.multinomial(dist.probs, 1, generator=generator).squeeze(1)
            else:
                a = logits.argmax(dim=1)
            # A copy, never a view: the env marks ended slots while the loss still needs ``a``
            # (the original's CPU-only ``a_t.cpu().numpy()`` aliasing bug).
            env_action = a.detach().cpu().numpy().astype(np.int64, copy=True)
            if rl:
                log_probs.append(dist.log_prob(a))
                entropies.append(dist.entropy())
                hiddens.append(h)
                masks.append(torch.as_tensor(~ended, device=dev, dtype=torch.float32))
        env_action[ended] = stop_action
        reward, stop = nav.step(env_action, active=~ended)
        rewards.append(reward)
        ended = ended | stop
        if ended.all():
            break
        obs = nav.observe("index")
    stats = {}
    loss_rl = torch.zeros((), device=dev)
    if rl and log_probs:
        loss_rl, stats = a2c_loss(model, log_probs, entropies, hiddens, masks, rewards, h, ended, gamma, entropy_coef)
    return RolloutResult(loss_il / B, loss_rl, t, ended.copy(), stats)


def a2c_loss(model, log_probs, entropies, hiddens, masks, rewards, last_h, ended, gamma, entropy_coef):
    """A2C loss of one sampled rollout (lists over T steps of (B,) tensors / arrays)."""
    dev = last_h.device
    with torch.no_grad():
        bootstrap = model.critic(last_h) * torch.as_tensor(~ended, device=dev, dtype=torch.float32)
    T = len(log_probs)
    values = model.critic(torch.stack(hiddens).flatten(0, 1)).view(T, -1)
    R = torch.as_tensor(np.stack(rewards), device=dev, dtype=torch.float32)
    returns = torch.empty_like(R)
    running = bootstrap
    for t in range(T - 1, -1, -1):  # over time steps, batched over episodes
        running = running * gamma + R[t]
        returns[t] = running
    mask = torch.stack(masks)
    lp, ent = torch.stack(log_probs), torch.stack(entropies)
    adv = (returns - values).detach()
    total = mask.sum().clamp(min=1.0)
    loss = ((-lp * adv * mask).sum() + 0.5 * (((returns - values) ** 2) * mask).sum()
            - entropy_coef * (ent * mask).sum()) / total
    with torch.no_grad():
        stats = {"reward": float((R * mask).sum() / mask[0].sum()), "entropy": float((ent * mask).sum() / total),
                 "value": float((values * mask).sum() / total)}
    return loss, stats


@torch.no_grad()
def greedy_trajectories(model: Follower, bank: FeatureBank, world, batch_size: int = 64,
                        env_mask_fn=None) -> dict:
    """Greedy (argmax) decoding of every episode of ``world``; ``{instr_id: trajectory}``.

    Trajectories are in R2R submission format ([[viewpoint, heading, elevation], ...]).
    The model is put in eval mode (dropout off) and restored afterwards.
    """
    was_training = model.training
    model.eval()
    out = {}
    try:
        n = len(world.episodes)
        for start in range(0, n, batch_size):
            idx = np.arange(start, min(n, start + batch_size))
            nav = NavBatch(world, len(idx))
            nav.reset_envs(np.arange(len(idx)), idx)
            rollout(model, bank, nav, "argmax")
            for b, e in enumerate(idx.tolist()):
                out[world.episodes[e].instr_id] = nav.trajectory(b)
    finally:
        model.train(was_training)
    return out
