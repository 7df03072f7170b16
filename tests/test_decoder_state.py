"""The follower's rollout wires the decoder as the original EnvDrop agent does.

Written as the original's loop (R2R-EnvDrop ``Seq2SeqAgent.rollout``): ``h1 = h_t`` from the
encoder, then every step ``h_t, c_t, logit, h1 = decoder(..., prev_h1=h1, c_t, ...)``, i.e. the
previous step's attended ``h_tilde`` is both the view-attention query and the LSTMCell's hidden
input; the critic reads ``h_t``; and A2C bootstraps an episode cut at the step limit from one more
decoder step at the observation it reached (``last_h_``). Dropout is off (eval mode) so the loop
and :func:`agents.rollout.rollout` draw the same sampling stream only.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from env_fixtures import write_data_root

from agents.config import TrainConfig
from agents.rollout import Speedups, StepRecord, a2c_loss, rollout, sample_actions
from agents.rows import Rows
from agents.trainer import Trainer

SMALL = dict(allow_random_features=True, hidden=32, word_embedding=16, action_embedding=8, progress=False)
B = 9


@pytest.fixture(scope="module")
def trainer(tmp_path_factory):
    root = write_data_root(tmp_path_factory.mktemp("data"))
    cfg = TrainConfig(features="toy", dataset="r2r", data_dir=str(root), out=str(root.parent / "run"), batch_size=B,
                      seed=5, eval_splits="val_unseen", threads=1, **SMALL)
    t = Trainer(cfg)
    t.follower.eval()
    return t


def envdrop_loop(t: Trainer, feedback: str, max_steps: int, generator=None):
    """The original's rollout over every row: (IL loss / B, A2C loss or None, ended)."""
    model, bank, nav = t.follower, t.bank, t.nav
    nav.reset_envs(np.arange(B), np.arange(B))
    obs = nav.observe("index")
    tokens = torch.as_tensor(obs["instruction"])
    lengths = torch.as_tensor(obs["instruction_length"][:, 0])
    tokens = tokens[:, : int(lengths.max())]
    ctx, ctx_mask, (h_t, c_t) = model.encoder(tokens, lengths)
    h1 = h_t
    ended = np.zeros(B, dtype=bool)
    loss_il, steps, rewards = torch.zeros(()), [], []
    for _ in range(max_steps):
        inp = bank.step_inputs(obs)
        h_t, c_t, logit, h1 = model.decoder(inp.action_angles, inp.views, inp.candidates, inp.candidate_mask,
                                            h1, c_t, ctx, ctx_mask)
        teacher = nav.teacher_actions()
        loss_il = loss_il + F.cross_entropy(logit, torch.as_tensor(np.where(ended, -100, teacher)),
                                            ignore_index=-100, reduction="sum")
        if feedback == "teacher":
            action = teacher.astype(np.int64)
        else:
            dist = torch.distributions.Categorical(logits=logit, validate_args=False)
            a = sample_actions(dist.probs, Rows.of(np.flatnonzero(~ended), B, torch.device("cpu")), generator,
                               nav.stop_action)
            action = a.numpy().copy()
            steps.append(StepRecord(np.arange(B), dist.log_prob(a), dist.entropy(), h_t,
                                    torch.as_tensor(~ended, dtype=torch.float32)))
        action[ended] = nav.stop_action
        reward, stop = nav.step(action, active=~ended)
        rewards.append(reward)
        ended = ended | stop
        if ended.all():
            break
        obs = nav.observe("index")
    loss_rl = None
    if steps:
        last_h = h_t
        if not ended.all():  # the original's extra decoder step for the bootstrap value
            inp = bank.step_inputs(obs)
            last_h, _, _, _ = model.decoder(inp.action_angles, inp.views, inp.candidates, inp.candidate_mask,
                                            h1, c_t, ctx, ctx_mask)
        loss_rl = a2c_loss(model, steps, rewards, last_h, np.arange(B), ended, 0.9, 0.01)[0]
    return loss_il / B, loss_rl, ended


@pytest.mark.parametrize("speedups", [Speedups.none(), Speedups()], ids=["baseline", "speedups"])
def test_teacher_rollout_feeds_the_attended_state_to_the_next_step(trainer, speedups):
    with torch.no_grad():
        want, _, _ = envdrop_loop(trainer, "teacher", 35)
        trainer.nav.reset_envs(np.arange(B), np.arange(B))
        got = rollout(trainer.follower, trainer.bank, trainer.nav, "teacher", il=True, **speedups.rollout_switches())
    torch.testing.assert_close(got.loss_il, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("speedups", [Speedups.none(), Speedups()], ids=["baseline", "speedups"])
def test_a2c_bootstraps_a_cut_episode_from_the_state_it_reached(trainer, speedups):
    with torch.no_grad():
        want_il, want_rl, ended = envdrop_loop(trainer, "sample", 2, torch.Generator().manual_seed(4))
        assert not ended.all()  # some episodes are cut at the limit, so the bootstrap counts
        trainer.nav.reset_envs(np.arange(B), np.arange(B))
        got = rollout(trainer.follower, trainer.bank, trainer.nav, "sample", il=True, rl=True, max_steps=2,
                      generator=torch.Generator().manual_seed(4), **speedups.rollout_switches())
    np.testing.assert_array_equal(got.stopped, ended)
    torch.testing.assert_close(got.loss_il, want_il, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.loss_rl, want_rl, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("sub_out", ["tanh", "max"])
def test_the_decoder_starts_from_the_encoders_states_as_envdrop(trainer, sub_out):
    """R2R-EnvDrop ``EncoderLSTM``: ``c_t = cat(enc_c_t[-1], enc_c_t[-2])`` (backward, forward) is the
    decoder's first cell; ``decoder_init = tanh(encoder2decoder(x))`` with ``x = cat(enc_h_t[-1],
    enc_h_t[-2])`` (``--subout tanh``) or ``x = ctx.max(1)[0]`` over ``pad_packed_sequence``'s output,
    the zeros of a shorter row's padding included (``--subout max``)."""
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    from agents.follower import FollowerConfig, InstructionEncoder

    enc = InstructionEncoder(FollowerConfig(**{**trainer.follower.cfg.to_dict(), "sub_out": sub_out})).eval()
    gen = torch.Generator().manual_seed(3)
    lengths = torch.tensor([7, 3, 5])
    tokens = torch.randint(1, enc.embedding.num_embeddings, (3, 7), generator=gen)
    tokens[torch.arange(7)[None, :] >= lengths[:, None]] = 0
    with torch.no_grad():
        for split in (True, False):
            _, _, (h0, c0) = enc(tokens, lengths, split_steps=split)
            packed = pack_padded_sequence(enc.embedding(tokens), lengths, batch_first=True, enforce_sorted=False)
            enc_h, (enc_h_t, enc_c_t) = enc.lstm(packed)
            ctx, _ = pad_packed_sequence(enc_h, batch_first=True)
            x = ctx.max(1)[0] if sub_out == "max" else torch.cat((enc_h_t[-1], enc_h_t[-2]), 1)
            torch.testing.assert_close(h0, torch.tanh(enc.bridge(x)), rtol=0, atol=1e-6)
            torch.testing.assert_close(c0, torch.cat((enc_c_t[-1], enc_c_t[-2]), 1), rtol=0, atol=1e-6)


def test_sub_out_is_checked(trainer):
    from agents.follower import FollowerConfig, InstructionEncoder

    with pytest.raises(ValueError, match="sub_out must be one of"):
        InstructionEncoder(FollowerConfig(**{**trainer.follower.cfg.to_dict(), "sub_out": "mean"}))


@pytest.mark.parametrize("written", [None, "h_tilde"], ids=["before-h_tilde", "forward-first-init"])
def test_a_follower_trained_with_an_earlier_decoder_is_refused(trainer, tmp_path, written):
    from agents.checkpoint import load_checkpoint, save_checkpoint
    from agents.inference import load_follower

    path = tmp_path / "latest.pt"
    trainer.save(path)
    load_follower(path)  # the current wiring loads
    tensors, meta = load_checkpoint(path)
    if written is None:
        del meta["decoder_state"]  # what checkpoints written before the decoder fed h_tilde forward hold
    else:
        meta["decoder_state"] = written  # h_tilde fed forward, the encoder's states forward direction first
    old = save_checkpoint(tmp_path / "old.pt", tensors, meta)
    for load in (load_follower, trainer.load):
        with pytest.raises(ValueError, match=rf"old\.pt: field 'decoder_state' is {written!r}, expected "
                                             r"'h_tilde/bwd_fwd'.*train it again"):
            load(old)


def test_a_follower_is_not_warm_started_under_another_sub_out(trainer, tmp_path):
    path = tmp_path / "latest.pt"
    trainer.save(path)  # sub_out "tanh", the default
    cfg = TrainConfig(**{**trainer.cfg.to_dict(), "out": str(tmp_path / "next"), "follower": str(path),
                         "sub_out": "max"})
    with pytest.raises(ValueError, match=r"latest\.pt: field 'follower_config.sub_out' is 'tanh', this run has "
                                         r"--sub-out max"):
        Trainer(cfg).start_from_follower()
