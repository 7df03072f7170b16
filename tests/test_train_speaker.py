"""The speaker, environmental dropout and back-translation on a tiny data root."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from env_fixtures import FEATURE_DIM, write_data_root

from agents.bank import FeatureBank
from agents.checkpoint import load_checkpoint
from agents.config import TrainConfig
from agents.envdrop import EnvDropout
from agents.speaker import Speaker, SpeakerConfig
from agents.trainer import Trainer
from agents.trajectory import teacher_trajectories
from envs.batch import NavBatch

# The toy store holds random features: training on them must be asked for, as a user would.
SMALL = dict(allow_random_features=True, hidden=64, word_embedding=32, action_embedding=16, progress=False, log_every=1000)


@pytest.fixture
def root(tmp_path):
    """The tiny data root with ONE instruction per training path and a vocabulary of all its words."""
    root = write_data_root(tmp_path / "data")
    train_file = root / "R2R" / "R2R_train.json"
    records = json.loads(train_file.read_text())
    for r in records:
        r["instructions"] = r["instructions"][:1]
    train_file.write_text(json.dumps(records))
    words = sorted({w for r in records for w in r["instructions"][0].split()})
    (root / "vocab.txt").write_text("\n".join(["<PAD>", "<UNK>", "<EOS>", *words]) + "\n")
    return root


def make_cfg(root, out, **kw) -> TrainConfig:
    base = dict(features="toy", dataset="r2r", data_dir=str(root), out=str(out), batch_size=3, seed=3,
                vocab=str(root / "vocab.txt"), eval_splits="train,val_unseen", **SMALL)
    base.update(kw)
    return TrainConfig(**base)


def test_teacher_trajectory_records_views_and_taken_actions(root, tmp_path):
    trainer = Trainer(make_cfg(root, tmp_path / "run", iters=1))
    world, bank = trainer.train_world, trainer.bank
    nav = NavBatch(world, len(world.episodes))
    nav.reset_envs(np.arange(nav.B), np.arange(nav.B))
    traj = teacher_trajectories(bank, nav)
    edges = np.array([len(e.path) - 1 for e in world.episodes])
    assert traj.lengths.tolist() == (edges + 1).tolist()  # every move plus the STOP step
    # The teacher reaches the goal in as many moves as the path has edges (equal-length paths may
    # differ on the grid); the STOP step's action is zeros, and so is the padding.
    for b, ep in enumerate(world.episodes):
        assert world.viewpoint_ids[nav.history_vp[b, edges[b]]] == ep.path[-1]
        assert torch.count_nonzero(traj.actions[b, edges[b]]) == 0
        assert torch.count_nonzero(traj.actions[b, edges[b] + 1:]) == 0
        assert torch.count_nonzero(traj.actions[b, 0, FEATURE_DIM:]) > 0  # angle part of a real move
    replay = NavBatch(world, 1)
    replay.reset_envs(np.array([0]), np.array([0]))
    inp = bank.step_inputs(replay.observe("index"))
    first = int(replay.teacher_actions()[0])
    assert torch.equal(traj.views[0, 0], inp.views[0])
    assert torch.equal(traj.actions[0, 0], inp.candidates[0, first])


def test_environmental_dropout_mask_is_shared_by_the_views_of_an_environment(root, tmp_path):
    trainer = Trainer(make_cfg(root, tmp_path / "run", iters=1))
    bank = FeatureBank(np.ones_like(trainer.train_world.features), "cpu")
    nav = NavBatch(trainer.train_world, 3)
    nav.reset_envs(np.arange(3), np.arange(3))
    mask = EnvDropout(0.5).sample(3, bank.dim, "cpu", generator=torch.Generator().manual_seed(0))
    inp = bank.step_inputs(nav.observe("index"), mask)
    for b in range(3):
        dropped = mask[b] == 0
        assert dropped.any() and (~dropped).any()
        vis = inp.views[b, :, :FEATURE_DIM]
        assert torch.all(vis[:, dropped] == 0) and torch.all(vis[:, ~dropped] == 2.0)  # 1 / (1 - p)
        cands = inp.candidates[b, :-1][~inp.candidate_mask[b, :-1]][:, :FEATURE_DIM]
        assert torch.all(cands[:, dropped] == 0) and torch.all(cands[:, ~dropped] == 2.0)
        assert torch.count_nonzero(inp.views[b, :, FEATURE_DIM:]) > 0  # angle channels untouched
    assert not torch.equal(mask[0], mask[1])  # one mask per environment
    batch_mask = EnvDropout(0.5, per="batch").sample(3, bank.dim, "cpu")
    assert torch.equal(batch_mask[0], batch_mask[2])
    with pytest.raises(ValueError, match="probability"):
        EnvDropout(1.0)


def test_speaker_generation_is_well_formed():
    cfg = SpeakerConfig(vocab_size=12, feature_dim=4, word_embedding=8, hidden=16, padding_idx=0, bos_idx=11, eos_idx=2)
    torch.manual_seed(0)
    speaker = Speaker(cfg).eval()
    views, actions = torch.randn(5, 3, 36, 4 + 128), torch.randn(5, 3, 4 + 128)
    lengths = torch.tensor([3, 1, 2, 3, 3])
    ids, n = speaker.generate(views, actions, lengths, max_length=7)
    assert ids.shape[0] == 5 and ids.shape[1] <= 9
    for row, k in zip(ids.tolist(), n.tolist()):
        assert row[0] == cfg.bos_idx and row[k - 1] == cfg.eos_idx and cfg.eos_idx not in row[1: k - 1]
        assert all(t == cfg.padding_idx for t in row[k:]) and cfg.bos_idx not in row[1:]
    # As the original's, the LSTMs run over the batch's padding: with the backward direction
    # (EnvDrop's --bidir, the default) a shorter trajectory's encoding depends on it; with one
    # direction it does not.
    for bidirectional in (True, False):
        torch.manual_seed(0)
        one_way = Speaker(SpeakerConfig(**{**vars(cfg), "bidirectional": bidirectional})).eval()
        ctx1, _ = one_way.encode(views[1:2, :1], actions[1:2, :1], lengths[1:2])
        ctx2, _ = one_way.encode(views[1:2], actions[1:2], lengths[1:2])
        assert torch.allclose(ctx1[0, 0], ctx2[0, 0], atol=1e-6) != bidirectional


def test_the_speaker_never_writes_unk():
    """EnvDrop's ``infer_batch``: ``logits[:, <UNK>] = -inf``."""
    cfg = SpeakerConfig(vocab_size=6, feature_dim=4, word_embedding=8, hidden=16, padding_idx=0, unk_idx=1, bos_idx=5,
                        eos_idx=2)
    torch.manual_seed(0)
    speaker = Speaker(cfg).eval()
    with torch.no_grad():  # make <UNK> the decoder's favourite word
        speaker.decoder.projection.bias[cfg.unk_idx] = 100.0
    views, actions = torch.randn(4, 3, 36, 4 + 128), torch.randn(4, 3, 4 + 128)
    ids, _ = speaker.generate(views, actions, torch.tensor([3, 2, 3, 1]), max_length=6)
    assert all(cfg.unk_idx not in row for row in ids.tolist()) and ids.shape[1] > 1


def test_speaker_overfits_a_handful_of_instructions(root, tmp_path):
    cfg = make_cfg(root, tmp_path / "speaker", mode="speaker", iters=80, eval_every=40, speaker_lr=3e-3,
                   speaker_dropout=0.0, speaker_env_dropout=0.0)
    trainer = Trainer(cfg)
    before = trainer.evaluate()
    history = trainer.train()
    assert before["train/bleu"] < 0.1
    assert history[-1]["train/bleu"] > 0.999, history[-1]
    assert history[-1]["train/loss"] < 0.1 < before["train/loss"]
    from agents.speaker_task import generate_instructions, path_representatives

    world = trainer.train_world
    texts = generate_instructions(trainer.task.speaker, trainer.bank, world, np.arange(len(world.episodes)))
    assert texts == [e.instruction for e in world.episodes]
    # A grounded speaker writes each path its own instruction; so do the references here.
    reps, _ = path_representatives(world)
    firsts = [world.episodes[i].instruction for i in reps]
    assert len(set(firsts)) == len(firsts) > 1
    assert history[-1]["train/distinct"] == 1.0
    assert trainer.best["train"]["value"] > 0.999  # best checkpoint kept by BLEU
    tensors, meta = load_checkpoint(tmp_path / "speaker" / "best_train.pt")
    assert "speaker" in tensors and meta["task"]["speaker_config"]["hidden"] == 64


def test_back_translation_trains_on_speaker_instructions_and_resumes(root, tmp_path):
    kw = dict(mode="bt", speaker_iters=30, speaker_lr=3e-3, aug_paths=50, eval_splits="val_unseen", eval_every=2,
              lr=1e-3)
    full = []
    trainer = Trainer(make_cfg(root, tmp_path / "full", iters=4, **kw))
    trainer.train(on_iteration=lambda i, l: full.append((i, l)))
    aug = trainer.task.aug_world
    assert len(aug.episodes) == 4 and all(e.path_id >= 1_000_000 for e in aug.episodes)  # all 4-6 edge paths
    # The speaker wrote instructions (more than <BOS> <EOS>) into the augmented episodes it used.
    assert (aug.instruction_lengths > 2).any()
    assert (tmp_path / "full" / "speaker.pt").exists()
    assert {"loss_ml", "loss_rl", "aug_loss_ml", "aug_loss_rl"} <= set(full[0][1])
    assert full[0][1]["aug_loss_ml"] > 0

    Trainer(make_cfg(root, tmp_path / "cut", iters=2, **kw)).train()
    resumed = Trainer(make_cfg(root, tmp_path / "cut", iters=4, **kw))
    assert resumed.iteration == 2
    rest = []
    resumed.train(on_iteration=lambda i, l: rest.append((i, l)))
    assert rest == full[2:]

    # The kept speaker.pt also writes offline instructions (scripts/speak.py).
    from agents.inference import speak_paths
    from vln.datasets import episodes_to_path_records

    records = episodes_to_path_records(aug.episodes[:2])
    spoken = speak_paths(tmp_path / "full" / "speaker.pt", records, root, "r2r", allow_random_features=True)
    assert [r.path for r in spoken] == [r.path for r in records]
    assert all(len(r.instructions) == 1 and r.instructions[0] for r in spoken)

    # A separately trained speaker can be given with --speaker; a vocabulary mismatch is refused.
    other = make_cfg(root, tmp_path / "bt2", iters=1, speaker=str(tmp_path / "full" / "speaker.pt"), **kw)
    assert Trainer(other).task.speaker_ready
    vocab2 = root / "vocab2.txt"
    vocab2.write_text((root / "vocab.txt").read_text() + "extra\n")
    bad = make_cfg(root, tmp_path / "bt3", iters=1, speaker=str(tmp_path / "full" / "speaker.pt"), vocab=str(vocab2), **kw)
    with pytest.raises(ValueError, match="vocabulary"):
        Trainer(bad)


def test_back_translation_warm_starts_the_follower_and_optionally_its_optimizer(root, tmp_path):
    kw = dict(mode="bt", speaker_iters=2, aug_paths=20, eval_splits="val_unseen", eval_every=100)
    Trainer(make_cfg(root, tmp_path / "fol", iters=3, lr=1e-3, eval_every=3, eval_splits="val_unseen")).train()
    source = tmp_path / "fol" / "latest.pt"
    saved, _ = load_checkpoint(source)
    for load_optim in (False, True):
        t = Trainer(make_cfg(root, tmp_path / f"bt{load_optim}", iters=0, lr=5e-4, weight_decay=1e-3,
                             follower=str(source), load_optim=load_optim, **kw))
        t.train()
        for k, v in t.follower.state_dict().items():
            assert torch.equal(v, saved["follower"][k]), k
        state = t.optimizer.state_dict()
        # the run's learning rate and weight decay, not the source run's (1e-3 and 0)
        assert [(g["lr"], g["weight_decay"]) for g in state["param_groups"]] == [(5e-4, 1e-3)] * len(state["param_groups"])
        if not load_optim:
            assert not state["state"]  # fresh RMSprop statistics, as EnvDrop without --loadOptim
            continue
        assert state["state"].keys() == saved["optimizer"]["state"].keys()
        for k, st in state["state"].items():
            assert torch.equal(st["square_avg"], saved["optimizer"]["state"][k]["square_avg"])
    # --env-dropout-per batch: one mask for the whole batch, for the speaker and the augmented batches.
    t = Trainer(make_cfg(root, tmp_path / "batchmask", iters=0, env_dropout_per="batch", speaker_env_dropout=0.3, **kw))
    for env_dropout in (t.task.env_dropout, t.task.speaker_task.env_dropout):
        mask = env_dropout.sample(3, t.bank.dim, "cpu")
        assert env_dropout.per == "batch" and bool((mask == mask[:1]).all())
    Trainer(make_cfg(root, tmp_path / "spk", mode="speaker", iters=1, eval_every=1, eval_splits="val_unseen")).train()
    with pytest.raises(ValueError, match="holds no trained follower"):
        Trainer(make_cfg(root, tmp_path / "bad", iters=0, follower=str(tmp_path / "spk" / "latest.pt"), **kw)).train()


def test_set_instructions_pads_and_cuts_like_the_tokenizer(root, tmp_path):
    world = Trainer(make_cfg(root, tmp_path / "run", iters=1)).train_world
    L = world.instruction_ids.shape[1]
    tok = world.tokenizer
    long_ids = np.full((1, L + 5), 5)
    long_ids[0, 0] = tok.bos_id
    world.set_instructions(np.array([1]), long_ids, np.array([L + 5]))
    assert world.instruction_lengths[1] == L and world.instruction_ids[1, L - 1] == tok.eos_id
    world.set_instructions(np.array([0]), np.array([[tok.bos_id, 5, tok.eos_id]]), np.array([3]))
    assert world.instruction_ids[0, :3].tolist() == [tok.bos_id, 5, tok.eos_id]
    assert (world.instruction_ids[0, 3:] == tok.pad_id).all() and world.instruction_lengths[0] == 3
    with pytest.raises(ValueError, match="episodes"):
        world.set_instructions(np.array([0, 1]), np.zeros((1, 3)), np.array([3]))


def test_a_speaker_checkpoint_is_not_exported_as_a_follower(root, tmp_path):
    from agents.inference import load_follower

    Trainer(make_cfg(root, tmp_path / "spk", mode="speaker", iters=1, eval_every=1, eval_splits="val_unseen")).train()
    with pytest.raises(ValueError, match="speaker"):
        load_follower(tmp_path / "spk" / "latest.pt")


def test_speak_script_writes_instructions_for_sampled_paths(root, tmp_path):
    from scripts import sample_aug_paths, speak

    Trainer(make_cfg(root, tmp_path / "spk", mode="speaker", iters=60, eval_every=60, speaker_lr=3e-3,
                     speaker_dropout=0.0, speaker_env_dropout=0.0, eval_splits="train")).train()
    paths = tmp_path / "aug.json"
    sample_aug_paths.main(["--connectivity", str(root / "connectivity"), "--scans-from", str(root / "R2R" / "R2R_train.json"),
                           "--seed", "0", "--out", str(paths)])
    out = tmp_path / "aug_speaker.json"
    res = speak.main(["--checkpoint", str(tmp_path / "spk" / "latest.pt"), "--dataset", "r2r", "--data-dir", str(root),
                      "--paths", str(paths), "--out", str(out), "--allow-random-features"])
    written = json.loads(out.read_text())
    sampled = json.loads(paths.read_text())
    assert res["paths"] == len(written) == len(sampled) > 0
    assert [r["path"] for r in written] == [r["path"] for r in sampled]
    words = set((root / "vocab.txt").read_text().split())
    for r in written:
        assert len(r["instructions"]) == 1 and r["instructions"][0]
        assert set(r["instructions"][0].split()) <= words
    # The training split: the overfitted speaker reproduces each path's instruction.
    res = speak.main(["--checkpoint", str(tmp_path / "spk" / "latest.pt"), "--dataset", "r2r", "--data-dir", str(root),
                      "--split", "train", "--out", str(tmp_path / "train_speaker.json"), "--allow-random-features"])
    got = json.loads((tmp_path / "train_speaker.json").read_text())
    ref = json.loads((root / "R2R" / "R2R_train.json").read_text())
    assert [r["instructions"] for r in got] == [r["instructions"] for r in ref]
    # The written file trains a follower with --aug-data (offline back-translation, as Speaker-Follower).
    from scripts import train_agent

    res = train_agent.main(["--features", "toy", "--dataset", "r2r", "--data-dir", str(root), "--vocab", str(root / "vocab.txt"),
                            "--allow-random-features", "--hidden", "32", "--word-embedding", "16", "--batch-size", "3",
                            "--iters", "2", "--eval-every", "2", "--eval-splits", "val_unseen", "--no-progress",
                            "--aug-data", str(out), "--out", str(tmp_path / "fol")])
    assert res["iteration"] == 2 and json.loads((tmp_path / "fol" / "params.json").read_text())["aug_data"] == str(out)


def write_aug_file(root, out, instructions=None) -> list[dict]:
    """An augmentation file: the training paths under new path_ids, with ``instructions`` (default: theirs)."""
    records = json.loads((root / "R2R" / "R2R_train.json").read_text())
    for k, r in enumerate(records):
        r["path_id"] = 1_000_000 + k
        if instructions is not None:
            r["instructions"] = instructions
    out.write_text(json.dumps(records))
    return records


def test_follower_trains_on_augmented_data_in_alternate_steps_and_resumes(root, tmp_path):
    aug_file = tmp_path / "aug.json"
    records = write_aug_file(root, aug_file)
    kw = dict(feedback="teacher", aug_data=str(aug_file), eval_splits="val_unseen", eval_every=2, lr=1e-3)
    full, weights = [], []

    def record(i, losses):
        full.append((i, losses))
        weights.append({k: v.clone() for k, v in trainer.follower.state_dict().items()})

    trainer = Trainer(make_cfg(root, tmp_path / "full", iters=4, **kw))
    aug = trainer.task.aug_world
    assert [e.path_id for e in aug.episodes] == [r["path_id"] for r in records]
    assert aug.tokenizer is trainer.tokenizer  # the training vocabulary
    trainer.train(on_iteration=record)
    # Iterations 1, 3 step on real batches, 2, 4 on augmented ones (EnvDrop's alternation), and
    # --iters counts both: each sampler gave two batches of 3.
    assert [sorted(losses) for _, losses in full] == [["loss_ml", "loss_rl"], ["aug_loss_ml", "aug_loss_rl"]] * 2
    assert trainer.sampler.pos == trainer.task.aug_sampler.pos == 6 % len(records)
    assert all(losses.get("aug_loss_ml", 1.0) > 0 for _, losses in full)
    assert not torch.equal(weights[0]["decoder.lstm.weight_ih"], weights[1]["decoder.lstm.weight_ih"])

    Trainer(make_cfg(root, tmp_path / "cut", iters=2, **kw)).train()
    resumed = Trainer(make_cfg(root, tmp_path / "cut", iters=4, **kw))
    rest = []
    resumed.train(on_iteration=lambda i, l: rest.append((i, l)))
    assert rest == full[2:]

    # --aug-ml-weight 0: the augmented steps' gradients are zero and RMSprop leaves the weights as they were.
    zero = Trainer(make_cfg(root, tmp_path / "zero", iters=2, **{**kw, "aug_ml_weight": 0.0}))
    after = []
    zero.train(on_iteration=lambda i, l: after.append({k: v.clone() for k, v in zero.follower.state_dict().items()}))
    assert all(torch.equal(after[0][k], after[1][k]) for k in after[0])

    # --follower starts a follower run from a trained follower's weights (EnvDrop --load).
    warm = Trainer(make_cfg(root, tmp_path / "warm", iters=0, follower=str(tmp_path / "full" / "latest.pt"), **kw))
    warm.train()
    saved, _ = load_checkpoint(tmp_path / "full" / "latest.pt")
    assert all(torch.equal(v, saved["follower"][k]) for k, v in warm.follower.state_dict().items())


def test_augmented_data_errors_name_the_file_the_path_and_the_field(root, tmp_path):
    from vln.errors import DataFormatError

    bad = tmp_path / "uninstructed.json"
    write_aug_file(root, bad, instructions=[])
    with pytest.raises(DataFormatError, match=r"uninstructed\.json.*path_id 1000000.*instructions"):
        Trainer(make_cfg(root, tmp_path / "run", iters=1, aug_data=str(bad)))
    records = write_aug_file(root, tmp_path / "elsewhere.json")
    records[1]["path"][-1] = "no_such_viewpoint"
    (tmp_path / "elsewhere.json").write_text(json.dumps(records))
    with pytest.raises(ValueError, match=r"elsewhere\.json.*1000001_0.*no_such_viewpoint"):
        Trainer(make_cfg(root, tmp_path / "run2", iters=1, aug_data=str(tmp_path / "elsewhere.json")))


def test_back_translation_warns_about_a_speaker_that_writes_one_instruction_for_every_path(root, tmp_path, caplog):
    from agents.backtranslation import collapsed_splits

    assert collapsed_splits({"val_unseen/distinct": 0.2, "val_seen/distinct": 0.9, "val_unseen/bleu": 0.0}) == \
        ["val_unseen/distinct"]
    # A speaker whose words do not depend on the trajectory (its attended context zeroed out of
    # the decoder's state) writes the same instruction for every path.
    cfg = make_cfg(root, tmp_path / "bt", mode="bt", iters=1, speaker_iters=0, aug_paths=50,
                   eval_splits="train", eval_every=1)  # 3 paths (val_unseen has 1: always distinct)
    t = Trainer(cfg)
    attention = t.task.speaker.decoder.attention
    with torch.no_grad():
        attention.linear_out.weight[:, : attention.linear_in.out_features] = 0
    with caplog.at_level("WARNING", logger="agents.backtranslation"):
        t.task.train_speaker(0)
    assert any("has not grounded its words" in r.getMessage() and "most train paths" in r.getMessage()
               for r in caplog.records)


def test_back_translation_samples_augmentation_paths_within_the_edge_bounds(root, tmp_path):
    kw = dict(mode="bt", speaker_iters=0, aug_paths=1000, iters=0, eval_splits="val_unseen")
    edges = {}
    for lo, hi in ((1, 1), (2, 3), (4, 6)):
        t = Trainer(make_cfg(root, tmp_path / f"bt{lo}{hi}", aug_min_edges=lo, aug_max_edges=hi, **kw))
        edges[lo, hi] = sorted({len(ep.path) - 1 for ep in t.task.aug_world.episodes})
    assert edges[1, 1] == [1]
    assert edges[2, 3] and set(edges[2, 3]) <= {2, 3}
    assert set(edges[4, 6]) <= {4, 5, 6}  # EnvDrop's bounds, the defaults
    assert TrainConfig().aug_min_edges == 4 and TrainConfig().aug_max_edges == 6


@pytest.mark.parametrize("flags, named", [
    (["--aug-min-edges", "5", "--aug-max-edges", "4"], "--aug-min-edges"),
    (["--aug-min-edges", "0"], "--aug-min-edges"),
    (["--ema-decay", "1.0"], "--ema-decay"),
    (["--ema-decay", "-0.5"], "--ema-decay"),
    (["--mode", "bt", "--aug-data", "aug.json"], "--aug-data"),
    (["--mode", "speaker", "--follower", "fol.pt"], "--follower"),
    (["--speaker", "spk.pt"], "--speaker"),
    (["--load-optim"], "--load-optim"),
    (["--aug-paths", "5"], "--aug-paths"),
    (["--mode", "speaker", "--env-dropout", "0.2"], "--env-dropout"),
    (["--speaker-lr", "1e-3"], "--speaker-lr"),
    (["--mode", "speaker", "--aug-ml-weight", "0.5"], "--aug-ml-weight"),
])
def test_train_agent_refuses_out_of_range_settings_in_one_line(tmp_path, flags, named):
    proc = subprocess.run([sys.executable, "scripts/train_agent.py", "--features", "none", "--out", str(tmp_path / "run"),
                           "--no-auto-data", *flags], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode != 0
    assert named in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "run" / "params.json").exists()


@pytest.mark.parametrize("feedback, batches", [("sample", 2), ("teacher", 1)])
def test_back_translation_gives_the_augmented_il_and_a2c_rollouts_a_batch_each(root, tmp_path, feedback, batches):
    """As the original's rollouts with a speaker, each of which resets the environment to the next
    augmented batch, draws its own dropout mask and has the speaker write that batch."""
    from agents.sampler import EpisodeSampler

    cfg = make_cfg(root, tmp_path / "bt", mode="bt", iters=1, speaker_iters=0, aug_paths=50, feedback=feedback,
                   eval_splits="val_unseen", eval_every=100)
    t = Trainer(cfg)
    t.task.prepare()
    parts = t.train_iteration()
    expect = EpisodeSampler(len(t.task.aug_world.episodes), cfg.batch_size, cfg.seed + 1)
    drawn = [expect.next() for _ in range(batches)]
    assert t.task.aug_sampler.state_dict() == expect.state_dict()
    assert t.task.aug_nav.episode.tolist() == drawn[-1].tolist()  # the last rollout ran on the last batch
    assert (parts["aug_loss_rl"] != 0) == (feedback == "sample") and parts["aug_loss_ml"] > 0


def save_as_one_directional(source, dest) -> Path:
    """Write ``source``'s speaker checkpoint to ``dest`` as one written before the encoder became
    bidirectional: one-directional weights, no ``bidirectional`` field in its config."""
    from agents.checkpoint import save_checkpoint

    tensors, meta = load_checkpoint(source)
    old_cfg = dict(meta["task"]["speaker_config"])
    del old_cfg["bidirectional"]
    tensors["speaker"] = Speaker(SpeakerConfig(**old_cfg, bidirectional=False)).state_dict()
    meta["task"]["speaker_config"] = old_cfg
    return save_checkpoint(dest, tensors, meta)


def test_a_speaker_with_a_one_directional_encoder_still_speaks_but_is_refused_for_back_translation(root, tmp_path):
    """Speakers written before the encoder became bidirectional (their config has no such field)."""
    from agents.inference import speak_paths
    from vln.datasets import episodes_to_path_records

    t = Trainer(make_cfg(root, tmp_path / "spk", mode="speaker", iters=1, eval_every=1, eval_splits="val_unseen"))
    t.train()
    old = save_as_one_directional(tmp_path / "spk" / "latest.pt", tmp_path / "old.pt")
    records = episodes_to_path_records(t.train_world.episodes[:2])
    spoken = speak_paths(old, records, root, "r2r", allow_random_features=True)
    assert [r.path for r in spoken] == [r.path for r in records]
    with pytest.raises(ValueError, match=r"old\.pt: field 'speaker_config.bidirectional' is False, expected True"):
        Trainer(make_cfg(root, tmp_path / "bt", mode="bt", iters=0, speaker=str(old), aug_paths=20))


def test_resuming_a_run_whose_speaker_is_one_directional_names_the_checkpoint_and_the_field(root, tmp_path):
    """A ``--mode speaker`` run folder written before the encoder became bidirectional: resuming it
    says which checkpoint and field, instead of the state dict's size mismatch."""
    out = tmp_path / "spk"
    Trainer(make_cfg(root, out, mode="speaker", iters=1, eval_every=1, eval_splits="val_unseen")).train()
    save_as_one_directional(out / "latest.pt", out / "latest.pt")
    with pytest.raises(ValueError, match=r"spk/latest\.pt: field 'speaker_config.bidirectional' is False, expected True"):
        Trainer(make_cfg(root, out, mode="speaker", iters=2, eval_every=1, eval_splits="val_unseen"))
