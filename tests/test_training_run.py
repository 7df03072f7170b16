"""The run layer on its own (training/): a toy MLP trainer killed with SIGKILL and resumed ends
bit-identical to an uninterrupted run; settings, checkpoints and the latest.pt policy."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

import toy_trainer
from training.checkpoint import load_checkpoint, rng_state, save_checkpoint
from training.config import ConfigMismatchError, build_parser, parse_config, read_params, resume_config, setting
from training.run import LatestPolicy, RunDir
from vln.errors import DataFormatError

TOY = Path(toy_trainer.__file__)


def test_killed_and_resumed_run_equals_an_uninterrupted_one(tmp_path):
    full = toy_trainer.main(["--out", str(tmp_path / "full"), "--iters", "12"])
    # A real kill -9 after iteration 7: latest.pt holds iteration 6 (written every 3).
    proc = subprocess.run([sys.executable, str(TOY), "--out", str(tmp_path / "cut"), "--iters", "12", "--die-at", "7"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    _, meta = load_checkpoint(tmp_path / "cut" / "latest.pt", fmt=toy_trainer.FORMAT)
    assert meta["iteration"] == 6
    resumed = toy_trainer.main(["--out", str(tmp_path / "cut"), "--die-at", "0"])  # iters 12 from params.json
    assert resumed["iteration"] == full["iteration"] == 12
    for name, value in full["model"].items():
        assert torch.equal(value, resumed["model"][name]), name
    assert list((tmp_path / "cut" / "tb").glob("events.out.tfevents.*"))


def test_resume_refuses_changed_settings_in_one_line_and_accepts_more_iterations(tmp_path):
    out = str(tmp_path / "run")
    toy_trainer.main(["--out", out, "--iters", "3"])
    with pytest.raises(ConfigMismatchError) as err:
        toy_trainer.main(["--out", out, "--hidden", "8", "--lr", "0.01", "--batch-size", "4"])
    msg = str(err.value)
    assert "\n" not in msg and "--hidden 8 (saved 16)" in msg and "--batch-size 4 (saved 8)" in msg
    assert "--lr" not in msg  # given, but equal to the saved value
    with pytest.raises(ConfigMismatchError, match="at iteration 3 already, beyond --iters 2"):
        toy_trainer.main(["--out", out, "--iters", "2"])
    assert toy_trainer.main(["--out", out, "--iters", "5"])["iteration"] == 5
    assert json.loads((tmp_path / "run" / "params.json").read_text())["iters"] == 5


def test_script_ends_a_mismatch_with_one_line(tmp_path):
    from vln.errors import run_script

    out = str(tmp_path / "run")
    toy_trainer.main(["--out", out, "--iters", "1"])
    with pytest.raises(SystemExit) as exit_:
        run_script(lambda: toy_trainer.main(["--out", out, "--hidden", "4"]))
    assert exit_.value.code == (f"error: {out} was started with other settings (see its params.json): --hidden 4 "
                                "(saved 16); drop these flags to resume it, or pass another --out for a new run")


@dataclass
class Cfg:
    batch_size: int = setting(64, "examples per batch")
    lr: float = setting(1e-4, "learning rate (default: the paper's 1e-4)")
    vocab: str | None = setting(None, "vocabulary file (default: built from the data)")
    mode: str = setting("a", "what to train", choices=("a", "b"))
    progress: bool = setting(True, "progress bar", may_change_on_resume=True)
    amp: bool = setting(False, "mixed precision")


def test_parser_is_generated_from_the_dataclass_with_each_default_shown_once():
    text = build_parser(Cfg, "Train it.").format_help()
    assert "--batch-size BATCH_SIZE" in text and "--no-progress" in text and "--amp" in text
    assert "(default: 64)" in text and text.count("default") == 4  # 64, the paper's, built from, (a)
    assert "{a,b}" in text
    assert "only these may be given with other values: --no-progress." in " ".join(text.split())
    cfg, given = parse_config(Cfg, ["--lr", "0.001", "--no-progress", "--mode", "b"])
    assert (cfg.lr, cfg.progress, cfg.mode, cfg.batch_size) == (0.001, False, "b", 64)
    assert given == {"lr", "progress", "mode"}
    with pytest.raises(SystemExit):
        parse_config(Cfg, ["--mode", "c"])


def test_resume_config_keeps_saved_settings_and_applies_those_that_may_change():
    saved = {"batch_size": 32, "lr": 1e-3, "vocab": "v.txt", "mode": "b", "progress": True, "amp": False}
    cfg = resume_config(saved, Cfg(progress=False), given={"progress"})
    assert (cfg.batch_size, cfg.lr, cfg.vocab, cfg.mode, cfg.progress) == (32, 1e-3, "v.txt", "b", False)
    with pytest.raises(ConfigMismatchError, match=r"--batch-size 64 \(saved 32\), --lr 0.0001 \(saved 0.001\)"):
        resume_config(saved, Cfg(vocab="v.txt", mode="b"))  # a config built in Python: every field counts
    assert resume_config({"batch_size": 64}, Cfg(), given=None).amp is False  # a field newer than the run
    with pytest.raises(ConfigMismatchError, match=r"settings \(see its params.json\): --amp \(saved: off\); drop"):
        resume_config(saved, Cfg(amp=True), given={"amp", "progress"})  # a switch is shown as typed


def test_read_params_names_unknown_settings_and_malformed_files(tmp_path):
    p = tmp_path / "params.json"
    p.write_text(json.dumps({"batch_size": 2, "hiden": 3}))
    with pytest.raises(DataFormatError, match=r"params.json, field 'hiden': is not a setting of Cfg"):
        read_params(p, Cfg)
    p.write_text("[1, 2]")
    with pytest.raises(DataFormatError, match="expected an object"):
        read_params(p, Cfg)
    p.write_text("{")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        read_params(p, Cfg)


def test_latest_policy_writes_every_n_iterations_or_every_m_minutes_whichever_first():
    now = [0.0]
    policy = LatestPolicy(every_iters=100, every_minutes=2.0, clock=lambda: now[0])
    due = []
    for it in range(1, 301):
        now[0] += 3.0 if it <= 150 else 0.5  # 3 s/iteration, then 0.5 s/iteration
        if policy.due(it):
            policy.saved(it)
            due.append(it)
    # By time (120 s = 40 iterations) while slow, by count (100, 200, 300) once fast (120 s = 240
    # iterations); each write restarts both (140 -> 180 is only 60 s at the faster pace).
    assert due == [40, 80, 100, 140, 200, 300]
    assert not LatestPolicy(0, 0).due(10**6)


def test_rng_state_round_trips_through_a_checkpoint(tmp_path):
    import random

    import numpy as np

    from training.checkpoint import restore_rng_state

    torch.manual_seed(1), np.random.seed(1), random.seed(1)
    np.random.normal()  # a cached Gaussian is part of NumPy's state
    save_checkpoint(tmp_path / "c.pt", {"rng": rng_state()}, {"x": 1})
    expected = (torch.rand(3), np.random.normal(size=3), random.random(), np.random.normal())
    tensors, meta = load_checkpoint(tmp_path / "c.pt")
    restore_rng_state(tensors["rng"])
    got = (torch.rand(3), np.random.normal(size=3), random.random(), np.random.normal())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2:] == got[2:]
    assert meta == {"x": 1}


def test_run_dir_is_fresh_until_latest_exists_and_refuses_other_formats(tmp_path):
    run = RunDir(tmp_path / "r", fmt="fmt-a")
    assert not run.resuming and not run.path.exists()
    run.save_latest({"w": torch.ones(2)}, {"iteration": 4})
    assert run.resuming and run.load_latest()[1] == {"iteration": 4}
    with pytest.raises(DataFormatError, match="field 'format': is 'fmt-a', expected 'fmt-b'"):
        RunDir(tmp_path / "r", fmt="fmt-b").load_latest()


def test_the_run_layer_imports_no_task_package():
    """VQA, captioning and pre-training import training/; it must not drag in the navigation code."""
    import ast

    allowed_vln = {"vln.errors", "vln.io_utils", "vln.cli"}
    for path in (Path(__file__).resolve().parents[1] / "training").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            for name in names:
                top = name.split(".")[0]
                assert top not in {"agents", "envs", "features", "data"}, f"{path.name} imports {name}"
                assert top != "vln" or name in allowed_vln, f"{path.name} imports {name}"


def test_log_means_a_loss_over_the_iterations_that_reported_it(tmp_path):
    from training.logging import TrainLog

    with TrainLog(tmp_path / "tb", total=4, log_every=4, progress=False) as log:
        for i, losses in enumerate(({"loss_ml": 1.0}, {"aug_loss_ml": 10.0}, {"loss_ml": 3.0}, {"aug_loss_ml": 30.0}), 1):
            means = log.step(i, losses)
    assert means == {"loss_ml": 2.0, "aug_loss_ml": 20.0}  # not halved by the iterations without them
