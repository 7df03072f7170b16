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
from .rows import Rows, draw_generator
from .step_grads import StepGrads

FEEDBACKS = ("teacher", "sample", "argmax")


@dataclass
class RolloutResult:
    """What a rollout returns.

    Attributes:
        loss_il: scalar tensor, summed cross-entropy (label-smoothed with ``label_smoothing``,
            :func:`imitation_loss`) / B (0 when not requested).
        loss_rl: scalar tensor, A2C loss / valid steps (0 when not requested).
        steps: number of decoder steps taken.
        stopped: (B,) bool, True where the agent chose STOP (else truncated).
        stats: floats for logging (``reward``, ``entropy``, ``value``).
        row_steps: episode rows the decoder computed, summed over the steps (B * steps when
            every row runs until the last episode ends).
        episode_losses: detached (B,) per-episode parts of the losses (``"il"``: the episode's
            imitation loss / B; ``"rl"``: its A2C terms / valid steps); they sum to the losses.
    """

    loss_il: torch.Tensor
    loss_rl: torch.Tensor
    steps: int
    stopped: np.ndarray
    stats: dict = field(default_factory=dict)
    row_steps: int = 0
    episode_losses: dict = field(default_factory=dict)


@dataclass
class Speedups:
    """How rollouts are computed; each switch changes the speed, never the numbers (to float rounding).

    Attributes:
        active_rows: compute each decoding step for the episodes still running only (the
            original computes all B rows until the last episode ends).
        split_encoder: the instruction LSTM's packed steps split with one ``split`` and its
            output padded with one ``index_copy`` (:mod:`agents.packed_lstm`), not sliced and
            padded step by step as ``nn.LSTM`` and ``pad_packed_sequence`` do on the CPU, whose
            backward passes are quadratic in the instruction length.
        contiguous_context: the encoder's output made row-major once, not copied by every
            attention step over it (padding a batch packed in sorted order gives a transposed
            view; the rollout's batches are packed unsorted, whose padding is row-major already).
        step_grads: the decoder's weight gradients and the context's gradient formed once over
            all steps of a rollout (:mod:`agents.step_grads`), not written and summed step by step.
        row_scores: the attentions' logits formed as the query row times the context's transpose,
            not as the context times the query column, as the original (:mod:`agents.attention`:
            the same dot products; on the CPU torch's ``bmm`` with one output column, and the
            query's gradient through it, is 6-10x slower).
        concurrent_rollouts: an iteration's teacher-forced IL batch and its A2C batch rolled out,
            and their gradients formed, at the same time on two threads, each with half of torch's
            threads (:meth:`agents.trainer.Trainer.backward_step`; one after the other when torch
            has a single thread). Each batch draws from a generator of its own either way, so the
            numbers do not depend on the switch. A rollout's small products keep two threads of
            one product half idle; two rollouts keep both cores busy.
    """

    active_rows: bool = True
    split_encoder: bool = True
    contiguous_context: bool = True
    step_grads: bool = True
    row_scores: bool = True
    concurrent_rollouts: bool = True

    @classmethod
    def none(cls) -> "Speedups":
        """Every switch off: the per-row computation of the original (the benches' baseline)."""
        return cls(**{k: False for k in cls.__dataclass_fields__})

    @classmethod
    def for_device(cls, device: torch.device | str) -> "Speedups":
        """The switches that pay on ``device``: all of them on the CPU; on CUDA ``active_rows`` alone.

        A CUDA iteration at batch 64 is bound by kernel launches, not arithmetic, so the switches
        that trade one large kernel for several small ones cost time there. Measured with
        ``bench/bench_train_speed.py --device cuda --each-switch`` on two H200 machines
        (2026-12-04), each switch alone against all off: ``split_encoder`` 0.57x / 0.55x
        (``nn.LSTM`` is one cuDNN call over the packed sequence), ``step_grads`` 0.87x / 0.93x,
        ``contiguous_context`` 0.88x / 1.07x (off: no gain in both), ``active_rows`` 1.00x / 1.06x
        (kept: it removes two thirds of the decoder's rows, which counts once the GPU is busy).
        """
        if torch.device(device).type == "cuda":  # row_scores, concurrent_rollouts: not measured on CUDA, off there
            return cls(active_rows=True, split_encoder=False, contiguous_context=False, step_grads=False,
                       row_scores=False, concurrent_rollouts=False)
        return cls()

    def rollout_switches(self) -> dict:
        """The switches :func:`rollout` takes, as keyword arguments (all but the trainer's
        ``concurrent_rollouts``)."""
        return {k: v for k, v in vars(self).items() if k != "concurrent_rollouts"}


def rollout(model: Follower, bank: FeatureBank, nav: NavBatch, feedback: str, *, il: bool = False,
            rl: bool = False, env_mask: torch.Tensor | None = None, max_steps: int | None = None,
            gamma: float = 0.9, entropy_coef: float = 0.01, generator: torch.Generator | None = None,
            active_rows: bool = True, split_encoder: bool = True, contiguous_context: bool = True,
            step_grads: bool = True, row_scores: bool = True, label_smoothing: float = 0.0) -> RolloutResult:
    """Roll the B episodes that ``nav`` was reset to until all stop or ``max_steps`` actions.

    Args:
        feedback: ``"teacher"`` follows the shortest-path actions, ``"sample"`` samples from the
            policy, ``"argmax"`` is greedy decoding.
        il: accumulate the imitation loss (cross-entropy against the teacher action).
        label_smoothing: the IL loss's label smoothing over each step's candidates
            (:func:`imitation_loss`; 0: plain cross-entropy, as EnvDrop).
        rl: accumulate the A2C loss (needs ``feedback="sample"`` to be on-policy).
        env_mask: (B, D) environmental-dropout mask, or None.
        generator: torch generator for sampling (default: the thread's :func:`agents.rows.draws_from`
            generator, else the global one); the dropout masks come from that default, never from
            this argument.
        active_rows: compute each step for the episodes still running only (False: every row
            until the last episode ends, as the original EnvDrop). The losses, gradients and
            sampled actions are the same either way (to float rounding): every random draw is
            made for the running episodes only, either way (:mod:`agents.rows`).
        split_encoder, contiguous_context, step_grads, row_scores: see :class:`Speedups` (the
            same numbers either way).
    """
    if feedback not in FEEDBACKS:
        raise ValueError(f"feedback must be one of {FEEDBACKS}, got {feedback!r}")
    dev = bank.device
    generator = generator if generator is not None else draw_generator()
    B, stop_action = nav.B, nav.stop_action
    max_steps = nav.world.cfg.max_episode_steps if max_steps is None else max_steps
    obs = nav.observe("index")
    tokens = torch.as_tensor(obs["instruction"], device=dev)
    lengths = torch.as_tensor(obs["instruction_length"][:, 0], device=dev)
    tokens = tokens[:, : int(lengths.max().clamp(min=1))]
    ctx, ctx_mask, (h, c) = model.encoder(tokens, lengths, split_encoder, contiguous_context)
    # The decoder's recurrent state is the attended h_tilde (EnvDrop's ``h1``, its ``prev_h1``):
    # it queries the views and is the LSTMCell's hidden input; the cell's own output ``h`` goes
    # to the critic. Both start from the encoder's bridged state.
    h_tilde = h
    grads = None
    if step_grads and torch.is_grad_enabled() and ctx.requires_grad:
        grads = StepGrads(model.decoder.step_linears(), ctx)  # gives ctx its gradient; the steps use it detached
        ctx = ctx.detach()
    ended = np.zeros(B, dtype=bool)
    live = np.arange(B)  # the batch rows that h, c, ctx and the step tensors hold
    loss_il = torch.zeros((), device=dev)
    episode_il = torch.zeros(B, device=dev)
    row_steps = 0
    steps = []  # RL: one StepRecord per step
    rewards = []
    t = 0
    for t in range(1, max_steps + 1):
        if active_rows and ended[live].any():  # drop the rows of the episodes that ended
            live, (h, h_tilde, c, ctx, ctx_mask) = running_rows(live, ended, h, h_tilde, c, ctx, ctx_mask)
            if grads is not None:
                grads.rows = torch.as_tensor(live, device=dev)
        rows = Rows.of(np.flatnonzero(~ended[live]), len(live), dev)  # the held rows still running
        row_steps += len(live)
        inp = bank.step_inputs(obs, env_mask, None if len(live) == B else live,
                               model.decoder.cfg.candidate_lookahead)
        h, c, logits, h_tilde = model.decoder(inp.action_angles, inp.views, inp.candidates, inp.candidate_mask,
                                              h_tilde, c, ctx, ctx_mask, rows, grads, inp.candidate_distances,
                                              row_scores)
        teacher = nav.teacher_actions()
        if il:
            target = torch.as_tensor(np.where(ended, -100, teacher)[live], device=dev)
            ce = imitation_loss(logits, target, label_smoothing)
            loss_il = loss_il + ce.sum()
            episode_il.index_add_(0, torch.as_tensor(live, device=dev), ce.detach())
        if feedback == "teacher":
            env_action = teacher.astype(np.int64)
        else:
            if feedback == "sample":
                dist = torch.distributions.Categorical(logits=logits, validate_args=False)  # checks cost per step
                a = sample_actions(dist.probs, rows, generator, stop_action)
            else:
                a = logits.argmax(dim=1)
            # A copy, never a view: the env marks ended slots while the loss still needs ``a``
            # (the original's CPU-only ``a_t.cpu().numpy()`` aliasing bug).
            env_action = np.full(B, stop_action, dtype=np.int64)
            env_action[live] = a.detach().cpu().numpy()
            if rl:
                steps.append(StepRecord(live, dist.log_prob(a), dist.entropy(), h,
                                        torch.as_tensor(~ended[live], device=dev, dtype=torch.float32)))
        env_action[ended] = stop_action
        reward, stop = nav.step(env_action, active=~ended)
        rewards.append(reward)
        ended = ended | stop
        if ended.all():
            break
        obs = nav.observe("index")
    stats = {}
    loss_rl = torch.zeros((), device=dev)
    episode_losses = {"il": episode_il / B} if il else {}
    if rl and steps:
        last_h, last_live = h, live
        if not ended.all():  # episodes cut at max_steps: the critic bootstraps from the state they reached
            last_h, last_live = bootstrap_state(model, bank, obs, env_mask, h_tilde, c, ctx, ctx_mask, live, ended,
                                                active_rows, row_scores)
        loss_rl, stats, episode_losses["rl"] = a2c_loss(model, steps, rewards, last_h, last_live, ended, gamma,
                                                        entropy_coef)
    return RolloutResult(loss_il / B, loss_rl, t, ended.copy(), stats, row_steps, episode_losses)


def imitation_loss(logits: torch.Tensor, target: torch.Tensor, smoothing: float = 0.0) -> torch.Tensor:
    """Per-row imitation loss of one decoding step.

    Args:
        logits: (n, C) candidate scores, ``-inf`` where a slot holds no candidate.
        target: (n,) int64 teacher action, -100 for rows whose episode has ended (loss 0).
        smoothing: label smoothing s over the row's candidates only: ``(1 - s) * CE + s * mean
            over the finite logits of -log p`` (the uniform target puts no mass on empty slots,
            whose ``-inf`` logits would make torch's own ``label_smoothing`` infinite).

    Returns:
        (n,) the loss of each row (nats).
    """
    logp = torch.log_softmax(logits, dim=1)
    ce = F.nll_loss(logp, target, ignore_index=-100, reduction="none")  # F.cross_entropy's own two steps
    if not smoothing:
        return ce
    valid = torch.isfinite(logits)
    uniform = -logp.masked_fill(~valid, 0.0).sum(dim=1) / valid.sum(dim=1)
    return (1.0 - smoothing) * ce + smoothing * uniform.masked_fill(target == -100, 0.0)


def running_rows(live: np.ndarray, ended: np.ndarray, *tensors: torch.Tensor) -> tuple[np.ndarray, list[torch.Tensor]]:
    """Keep the held rows whose episodes still run.

    ``live`` (n,): the batch rows the tensors hold (leading dimension n); ``ended`` (B,): the
    batch's ended flags. Returns (the batch rows kept (m,), each tensor's m rows).
    """
    keep = np.flatnonzero(~ended[live])
    k = torch.as_tensor(keep, device=tensors[0].device)
    return live[keep], [x[k] for x in tensors]


@torch.no_grad()
def bootstrap_state(model: Follower, bank: FeatureBank, obs: dict, env_mask, h_tilde, c, ctx, ctx_mask,
                    live: np.ndarray, ended: np.ndarray, active_rows: bool = True, row_scores: bool = True):
    """The decoder's LSTM output at the observation after the last action (EnvDrop's ``last_h_``).

    A sampled rollout cut at ``max_steps`` leaves episodes that did not stop; A2C bootstraps
    their return from the critic's value of the state they reached, which the original forms
    with one more decoder step (no action taken, no gradient) from the last ``h_tilde`` / ``c``.

    Args: ``h_tilde``, ``c``, ``ctx``, ``ctx_mask``: the held rows ``live`` (n of the batch's B);
        ``active_rows``: compute the still-running rows only (False: every held row);
        ``row_scores``: the attentions' form (:class:`Speedups`).

    Returns: (last_h (m, H), the batch rows it holds (m,)).
    """
    if active_rows:
        live, (h_tilde, c, ctx, ctx_mask) = running_rows(live, ended, h_tilde, c, ctx, ctx_mask)
    rows = Rows.of(np.flatnonzero(~ended[live]), len(live), h_tilde.device)
    inp = bank.step_inputs(obs, env_mask, None if len(live) == len(ended) else live,
                           model.decoder.cfg.candidate_lookahead)
    last_h, _, _, _ = model.decoder(inp.action_angles, inp.views, inp.candidates, inp.candidate_mask,
                                    h_tilde, c, ctx, ctx_mask, rows, candidate_distances=inp.candidate_distances,
                                    row_scores=row_scores)
    return last_h, live


def sample_actions(probs: torch.Tensor, rows: Rows | None, generator: torch.Generator | None,
                   stop_action: int) -> torch.Tensor:
    """(n,) actions drawn from ``probs`` (n, K+1) with ``torch.multinomial``, for the running
    ``rows`` only (None: every row runs); the other rows get ``stop_action`` (see :mod:`agents.rows`)."""
    if rows is None:
        return torch.multinomial(probs, 1, generator=generator).squeeze(1)
    drawn = torch.multinomial(probs.detach()[rows.index], 1, generator=generator).squeeze(1)
    return rows.scatter(drawn, stop_action)


@dataclass
class StepRecord:
    """What A2C keeps of one sampled step of the rows ``live`` (n of the batch's B)."""

    live: np.ndarray  #: (n,) batch rows
    log_prob: torch.Tensor  #: (n,)
    entropy: torch.Tensor  #: (n,)
    hidden: torch.Tensor  #: (n, 512) decoder state after the step
    mask: torch.Tensor  #: (n,) float32, 1 where the episode had not ended before the step


def _by_step(values: list, steps: list, B: int) -> torch.Tensor:
    """(T, B) tensor of per-step (n_t,) tensors placed at their rows (0 elsewhere)."""
    if all(len(s.live) == B for s in steps):
        return torch.stack(values)
    flat = torch.as_tensor(np.concatenate([t * B + s.live for t, s in enumerate(steps)]), device=values[0].device)
    return torch.zeros(len(steps) * B, device=values[0].device).index_copy(0, flat, torch.cat(values)).view(len(steps), B)


def a2c_loss(model, steps: list, rewards, last_h, last_live, ended, gamma, entropy_coef):
    """A2C loss of one sampled rollout: ``steps`` (:class:`StepRecord` over T steps), ``rewards``
    (T arrays (B,)), ``last_h`` (n, 512) the state of the rows ``last_live`` after the last step.

    Returns the loss, logging stats and the (B,) detached per-episode parts of the loss.
    """
    dev = last_h.device
    B = len(ended)
    T = len(steps)
    with torch.no_grad():  # bootstrap the episodes still running after the last step
        going = ~ended[last_live]
        boot = model.critic(last_h, Rows.of(np.flatnonzero(going), len(last_live), dev))
        boot = boot * torch.as_tensor(going, device=dev, dtype=torch.float32)
        bootstrap = boot if len(last_live) == B else torch.zeros(B, device=dev).index_copy(
            0, torch.as_tensor(last_live, device=dev), boot)
    # the critic of every computed row of every step, its dropout drawn for the running ones (agents.rows)
    mask_rows = torch.cat([s.mask for s in steps])
    v = model.critic(torch.cat([s.hidden for s in steps]),
                     Rows.of(np.flatnonzero(mask_rows.cpu().numpy() > 0), len(mask_rows), dev))
    values = _by_step(list(v.split([len(s.live) for s in steps])), steps, B)
    R = torch.as_tensor(np.stack(rewards), device=dev, dtype=torch.float32)
    returns = torch.empty_like(R)
    running = bootstrap
    for t in range(T - 1, -1, -1):  # over time steps, batched over episodes
        running = running * gamma + R[t]
        returns[t] = running
    mask = _by_step([s.mask for s in steps], steps, B)
    lp = _by_step([s.log_prob for s in steps], steps, B)
    ent = _by_step([s.entropy for s in steps], steps, B)
    adv = (returns - values).detach()
    total = mask.sum().clamp(min=1.0)
    loss = ((-lp * adv * mask).sum() + 0.5 * (((returns - values) ** 2) * mask).sum()
            - entropy_coef * (ent * mask).sum()) / total
    with torch.no_grad():
        stats = {"reward": float((R * mask).sum() / mask[0].sum()), "entropy": float((ent * mask).sum() / total),
                 "value": float((values * mask).sum() / total)}
        per_episode = ((-lp * adv + 0.5 * (returns - values) ** 2 - entropy_coef * ent) * mask).sum(0) / total
    return loss, stats, per_episode


@torch.no_grad()
def greedy_trajectories(model: Follower, bank: FeatureBank, world, batch_size: int = 64,
                        env_mask_fn=None, speedups: Speedups | None = None) -> dict:
    """Greedy (argmax) decoding of every episode of ``world``; ``{instr_id: trajectory}``.

    Trajectories are in R2R submission format ([[viewpoint, heading, elevation], ...]).
    The model is put in eval mode (dropout off) and restored afterwards. ``speedups``: by default
    :meth:`Speedups.for_device` of the bank's device.
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
            rollout(model, bank, nav, "argmax", **(speedups or Speedups.for_device(bank.device)).rollout_switches())
            for b, e in enumerate(idx.tolist()):
                out[world.episodes[e].instr_id] = nav.trajectory(b)
    finally:
        model.train(was_training)
    return out
