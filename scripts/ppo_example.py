#!/usr/bin/env python
"""PPO with action masking on vln/R2R-v0, in one file (cleanrl style): copy it and change it.

    python scripts/ppo_example.py --total-timesteps 150000 --data-dir data/synthetic

It trains over ``gymnasium.make_vec("vln/R2R-v0", vectorization_mode="vector_entry_point")`` (our
natively batched env, ``NEXT_STEP`` autoreset) in ``feature_mode="index"``: observations carry
feature rows, and the policy gathers the (36, D) visual features from one tensor,
``env.unwrapped.world.features``. Invalid actions get logit -inf from ``obs["action_mask"]``.
At the end (and every ``--eval-every`` iterations) the greedy policy and a uniformly random masked
policy are scored on ``--eval-split`` with :class:`vln.evaluate.Evaluator`.
TensorBoard: ``train/*`` (losses, KL, clip fraction), ``charts/*`` (returns, SPS, SR/SPL).
"""
from __future__ import annotations

import json
import logging
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
from torch.distributions.categorical import Categorical
from torch.utils.tensorboard import SummaryWriter

import envs  # noqa: F401 - registers vln/R2R-v0
from envs.angles import ANGLE_FEATURE_SIZE
from training.config import parse_config
from vln.cli import first_line
from vln.errors import VLNError, run_script
from vln.evaluate import Evaluator
from vln.io_utils import atomic_path

logger = logging.getLogger(__name__)


@dataclass
class Args:
    exp_name: str = field(default="ppo_example", metadata={"help": "run name (the run folder is <exp_name>__<seed>__<time>)"})
    seed: int = field(default=1, metadata={"help": "seed of python, numpy, torch and the environments"})
    torch_deterministic: bool = field(default=True, metadata={"help": "torch.backends.cudnn.deterministic"})
    data_dir: str | None = field(default=None, metadata={"help": "data root (default: the synthetic world)"})
    features: str = field(default="synthetic_semantic", metadata={"help": "encoder name or feature store path"})
    env_id: str = field(default="vln/R2R-v0", metadata={"help": "environment id"})
    runs_dir: str = field(default="runs", metadata={"help": "where run folders go"})
    total_timesteps: int = field(default=150_000, metadata={"help": "environment steps in all"})
    learning_rate: float = field(default=1e-3, metadata={"help": "Adam learning rate"})
    num_envs: int = field(default=64, metadata={"help": "parallel environments"})
    num_steps: int = field(default=32, metadata={"help": "steps per environment per rollout"})
    anneal_lr: bool = field(default=True, metadata={"help": "anneal the learning rate linearly to 0"})
    gamma: float = field(default=0.95, metadata={"help": "discount (episodes are ~5-10 actions)"})
    gae_lambda: float = field(default=0.95, metadata={"help": "GAE lambda"})
    num_minibatches: int = field(default=4, metadata={"help": "minibatches per epoch"})
    update_epochs: int = field(default=4, metadata={"help": "epochs per rollout"})
    norm_adv: bool = field(default=True, metadata={"help": "normalise advantages per minibatch"})
    clip_coef: float = field(default=0.2, metadata={"help": "PPO clip range"})
    ent_coef: float = field(default=0.01, metadata={"help": "entropy bonus"})
    vf_coef: float = field(default=0.5, metadata={"help": "value loss weight"})
    max_grad_norm: float = field(default=0.5, metadata={"help": "gradient clipping norm"})
    hidden: int = field(default=128, metadata={"help": "hidden size of the policy"})
    eval_split: str = field(default="val_unseen", metadata={"help": "split scored at the end"})
    eval_every: int = field(default=0, metadata={"help": "also score every N iterations (0: only at the end)"})
    log_every: int = field(default=10, metadata={"help": "print a log line every N iterations"})


def parse_args(argv=None) -> Args:
    """The flags generated from :class:`Args` by the run layer (``--total-timesteps``, ``--no-anneal-lr`` ...)."""
    return parse_config(Args, argv, first_line(__doc__))[0]


def gather_features(obs: dict, table: torch.Tensor, panoramas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Panorama and candidate features of index-mode observations.

    Args:
        obs: tensors ``feature_row`` (B, 1), ``candidate_point_ids`` (B, K) and
            ``candidate_angles`` (B, K, 4) [sin h, cos h, sin e, cos e] (radians, relative to the
            agent's heading).
        table: (rows, 36, D) float32 visual features (``world.features``).
        panoramas: (rows, D) the mean of each row's 36 views (``table.mean(1)``, computed once).

    Returns:
        panorama (B, D) and candidates (B, K, D+128) (visual feature of the view in which each
        candidate is seen ++ EnvDrop's 128-d angle feature; zeros for padding).
    """
    row = obs["feature_row"][:, 0].clamp(min=0)
    point = obs["candidate_point_ids"]
    cand = table[row[:, None], point.clamp(min=0)] * (point >= 0)[..., None]     # (B, K, D)
    cand_angles = obs["candidate_angles"].repeat(1, 1, ANGLE_FEATURE_SIZE // 4)  # (B, K, 128)
    return panoramas[row], torch.cat([cand, cand_angles], -1)


def layer_init(layer: nn.Linear, std: float = np.sqrt(2), bias: float = 0.0) -> nn.Linear:
    torch.nn.init.orthogonal_(layer.weight, std)
    torch.nn.init.constant_(layer.bias, bias)
    return layer


class Agent(nn.Module):
    """Scores each candidate against the instruction and the current panorama; STOP has its own head.

    instruction tokens -> embedding, masked mean; panorama -> mean of the 36 views -> MLP; a state vector
    from both; candidate logit = MLP([candidate, state, candidate * state]); value = MLP(state).
    """

    def __init__(self, vocab_size: int, feature_dim: int, hidden: int):
        super().__init__()
        d = feature_dim + ANGLE_FEATURE_SIZE
        self.embed = nn.Embedding(vocab_size, hidden)
        self.view = nn.Sequential(layer_init(nn.Linear(feature_dim, hidden)), nn.ReLU())
        self.cand = nn.Sequential(layer_init(nn.Linear(d, hidden)), nn.ReLU())
        self.state = nn.Sequential(layer_init(nn.Linear(2 * hidden, hidden)), nn.ReLU())
        self.score = nn.Sequential(layer_init(nn.Linear(3 * hidden, hidden)), nn.ReLU(), layer_init(nn.Linear(hidden, 1), 0.01))
        self.stop = layer_init(nn.Linear(hidden, 1), 0.01)
        self.critic = nn.Sequential(layer_init(nn.Linear(hidden, hidden)), nn.ReLU(), layer_init(nn.Linear(hidden, 1), 1.0))

    def features(self, obs: dict, table) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K+1) masked action logits and the (B, H) state; ``table`` = (features, panoramas)."""
        panorama, cands = gather_features(obs, *table)
        tokens = obs["instruction"]
        pad = torch.arange(tokens.shape[1])[None, :] < obs["instruction_length"]
        words = (self.embed(tokens) * pad[..., None]).sum(1) / pad.sum(1, keepdim=True).clamp(min=1)
        state = self.state(torch.cat([words, self.view(panorama)], -1))      # (B, H)
        c = self.cand(cands)                                                    # (B, K, H)
        s = state[:, None].expand_as(c)
        logits = torch.cat([self.score(torch.cat([c, s, c * s], -1))[..., 0], self.stop(state)], -1)
        logits = logits.masked_fill(obs["action_mask"] == 0, -1e9)              # (B, K+1)
        return logits, state

    def get_value(self, obs: dict, table: tuple) -> torch.Tensor:
        return self.critic(self.features(obs, table)[1])[:, 0]

    def get_action_and_value(self, obs: dict, table: tuple, action=None):
        logits, state = self.features(obs, table)
        probs = Categorical(logits=logits)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action), probs.entropy(), self.critic(state)[:, 0]


def to_tensors(obs: dict) -> dict:
    return {k: torch.as_tensor(v) for k, v in obs.items()}


def evaluate(env_kwargs: dict, split: str, tokenizer, policy) -> dict:
    """Run every episode of ``split`` once with ``policy(obs) -> (B,) actions``; R2R metrics."""
    probe = gym.make_vec(env_kwargs["env_id"], num_envs=1, vectorization_mode="vector_entry_point",
                         **env_kwargs["kwargs"], split=split, tokenizer=tokenizer)
    world = probe.unwrapped.world
    n = len(world.episodes)
    venv = gym.make_vec(env_kwargs["env_id"], num_envs=n, vectorization_mode="vector_entry_point", world=world)
    obs, _ = venv.reset(options={"episodes": np.arange(n)})
    finished, trajectories = np.zeros(n, dtype=bool), {}
    while not finished.all():
        obs, _, term, trunc, info = venv.step(policy(obs))
        newly = (term | trunc) & ~finished
        for b in np.flatnonzero(newly):
            trajectories[info["instr_id"][b]] = info["trajectory"][b]
        finished |= term | trunc
    return Evaluator(world.navgraph, world.episodes).score(trajectories).summary


def main(argv=None) -> dict:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    batch_size = args.num_envs * args.num_steps
    minibatch_size = batch_size // args.num_minibatches
    num_iterations = max(1, args.total_timesteps // batch_size)
    run_name = f"{args.exp_name}__{args.seed}__{int(time.time())}"
    run_dir = Path(args.runs_dir) / run_name
    writer = SummaryWriter(str(run_dir))
    writer.add_text("hyperparameters", "|param|value|\n|-|-|\n" + "\n".join(f"|{k}|{v}|" for k, v in vars(args).items()))

    # Seeding
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.deterministic = args.torch_deterministic

    # Environments
    kwargs = dict(data_dir=args.data_dir, features=args.features, feature_mode="index")
    envs_ = gym.make_vec(args.env_id, num_envs=args.num_envs, vectorization_mode="vector_entry_point",
                         split="train", **kwargs)
    envs_ = gym.wrappers.vector.RecordEpisodeStatistics(envs_)
    world = envs_.unwrapped.world
    features = torch.tensor(np.asarray(world.features, dtype=np.float32))  # (rows, 36, D), one copy
    table = (features, features.mean(1))
    n_actions = envs_.single_action_space.n

    agent = Agent(world.vocab_size, world.feature_dim, args.hidden)
    optimizer = torch.optim.Adam(agent.parameters(), lr=args.learning_rate, eps=1e-5)

    # Rollout storage
    obs_buf = {k: torch.zeros((args.num_steps, args.num_envs) + s.shape, dtype=torch.as_tensor(s.sample()).dtype)
               for k, s in envs_.single_observation_space.items()}
    actions = torch.zeros((args.num_steps, args.num_envs), dtype=torch.long)
    logprobs, rewards, dones, values, valid = (torch.zeros((args.num_steps, args.num_envs)) for _ in range(5))

    global_step, start_time = 0, time.time()
    next_obs, _ = envs_.reset(seed=args.seed)
    next_obs = to_tensors(next_obs)
    # NEXT_STEP autoreset: the step after an episode ends only resets that env (its action is
    # ignored and its reward is 0), so that step is masked out of the loss.
    next_done = torch.zeros(args.num_envs)

    for iteration in range(1, num_iterations + 1):
        if args.anneal_lr:
            optimizer.param_groups[0]["lr"] = (1.0 - (iteration - 1.0) / num_iterations) * args.learning_rate
        for step in range(args.num_steps):
            global_step += args.num_envs
            for k in obs_buf:
                obs_buf[k][step] = next_obs[k]
            valid[step] = 1.0 - next_done
            with torch.no_grad():
                action, logprob, _, value = agent.get_action_and_value(next_obs, table)
            values[step], actions[step], logprobs[step] = value, action, logprob
            obs, reward, term, trunc, info = envs_.step(action.numpy())
            done = term | trunc
            rewards[step] = torch.as_tensor(reward)
            dones[step] = next_done = torch.as_tensor(done, dtype=torch.float32)
            next_obs = to_tensors(obs)
            if "episode" in info:
                ended = info["_episode"]
                writer.add_scalar("charts/episodic_return", float(info["episode"]["r"][ended].mean()), global_step)
                writer.add_scalar("charts/episodic_length", float(info["episode"]["l"][ended].mean()), global_step)

        # Advantages (GAE); an episode's last step does not bootstrap.
        with torch.no_grad():
            next_value = agent.get_value(next_obs, table)
            advantages = torch.zeros_like(rewards)
            lastgaelam = 0
            for t in reversed(range(args.num_steps)):
                nextvalues = next_value if t == args.num_steps - 1 else values[t + 1]
                nonterminal = 1.0 - dones[t]
                delta = rewards[t] + args.gamma * nextvalues * nonterminal - values[t]
                advantages[t] = lastgaelam = delta + args.gamma * args.gae_lambda * nonterminal * lastgaelam
            returns = advantages + values

        # Flatten the batch, keeping only steps whose action acted.
        keep = valid.reshape(-1) > 0
        b_obs = {k: v.reshape((-1,) + v.shape[2:])[keep] for k, v in obs_buf.items()}
        b_logprobs, b_actions = logprobs.reshape(-1)[keep], actions.reshape(-1)[keep]
        b_advantages, b_returns, b_values = advantages.reshape(-1)[keep], returns.reshape(-1)[keep], values.reshape(-1)[keep]
        n_valid = int(keep.sum())

        # PPO update
        clipfracs = []
        for epoch in range(args.update_epochs):
            order = torch.randperm(n_valid)
            for start in range(0, n_valid, minibatch_size):
                mb = order[start:start + minibatch_size]
                _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                    {k: v[mb] for k, v in b_obs.items()}, table, b_actions[mb])
                logratio = newlogprob - b_logprobs[mb]
                ratio = logratio.exp()
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - logratio).mean()
                    clipfracs.append(((ratio - 1.0).abs() > args.clip_coef).float().mean().item())
                mb_adv = b_advantages[mb]
                if args.norm_adv:
                    mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
                pg_loss = torch.max(-mb_adv * ratio, -mb_adv * ratio.clamp(1 - args.clip_coef, 1 + args.clip_coef)).mean()
                v_loss = 0.5 * ((newvalue - b_returns[mb]) ** 2).mean()
                entropy_loss = entropy.mean()
                loss = pg_loss - args.ent_coef * entropy_loss + v_loss * args.vf_coef
                optimizer.zero_grad()
                loss.backward()
                nn.utils.clip_grad_norm_(agent.parameters(), args.max_grad_norm)
                optimizer.step()

        y_pred, y_true = b_values.numpy(), b_returns.numpy()
        var_y = np.var(y_true)
        explained_var = np.nan if var_y == 0 else 1 - np.var(y_true - y_pred) / var_y
        sps = int(global_step / (time.time() - start_time))
        writer.add_scalar("charts/learning_rate", optimizer.param_groups[0]["lr"], global_step)
        writer.add_scalar("train/value_loss", v_loss.item(), global_step)
        writer.add_scalar("train/policy_loss", pg_loss.item(), global_step)
        writer.add_scalar("train/entropy", entropy_loss.item(), global_step)
        writer.add_scalar("train/approx_kl", approx_kl.item(), global_step)
        writer.add_scalar("train/clipfrac", float(np.mean(clipfracs)), global_step)
        writer.add_scalar("train/explained_variance", explained_var, global_step)
        writer.add_scalar("charts/SPS", sps, global_step)
        if iteration % args.log_every == 0 or iteration == num_iterations:
            print(f"iteration {iteration}/{num_iterations} global_step={global_step} steps/s={sps} "
                  f"policy_loss={pg_loss.item():.3f} value_loss={v_loss.item():.3f} entropy={entropy_loss.item():.3f}")
        if args.eval_every and iteration % args.eval_every == 0 and iteration != num_iterations:
            scores = evaluate_greedy(agent, table, args, kwargs, world.tokenizer)
            writer.add_scalar(f"charts/{args.eval_split}_sr", scores["sr"], global_step)

    # Final evaluation: the trained greedy policy against a uniformly random masked one.
    greedy = evaluate_greedy(agent, table, args, kwargs, world.tokenizer)
    rng = np.random.default_rng(args.seed)
    random_policy = lambda obs: np.argmax(rng.random(obs["action_mask"].shape) * obs["action_mask"], axis=1)  # noqa: E731
    rand = evaluate(dict(env_id=args.env_id, kwargs=kwargs), args.eval_split, world.tokenizer, random_policy)
    for name, scores in (("", greedy), ("random_", rand)):
        writer.add_scalar(f"charts/{args.eval_split}_{name}sr", scores["sr"], global_step)
        writer.add_scalar(f"charts/{args.eval_split}_{name}spl", scores["spl"], global_step)
    result = {"global_step": global_step, "steps_per_s": sps, "run_dir": str(run_dir),
              f"{args.eval_split}_sr": greedy["sr"], f"{args.eval_split}_spl": greedy["spl"],
              f"{args.eval_split}_random_sr": rand["sr"], f"{args.eval_split}_random_spl": rand["spl"]}
    print(json.dumps(result, indent=1))
    with atomic_path(run_dir / "agent.pt") as tmp:
        torch.save(agent.state_dict(), tmp)
    envs_.close()
    writer.close()
    return result


def evaluate_greedy(agent: Agent, table: tuple, args: Args, kwargs: dict, tokenizer) -> dict:
    """SR/SPL of the agent's most likely action on ``args.eval_split``."""
    def policy(obs):
        with torch.no_grad():
            logits, _ = agent.features(to_tensors(obs), table)
        return logits.argmax(-1).numpy()
    return evaluate(dict(env_id=args.env_id, kwargs=kwargs), args.eval_split, tokenizer, policy)


if __name__ == "__main__":
    run_script(main, (VLNError, FileNotFoundError))  # e.g. no feature store: one line naming the command that builds it
