"""``scripts/synthetic_recipe.py``: the README's 15-minute recipe end to end, on a tiny budget.

A 6-house world, a handful of iterations per phase: the test checks the wiring a user relies on
(phase 2 goes on from phase 1's follower on the speaker's instructions for every 4-7 edge training
path, each phase timed, the curves read back) and that a failing step stops the run with its log.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import synthetic_recipe  # noqa: E402


@pytest.mark.slow
def test_recipe_runs_three_phases_and_reports_a_table_row(tmp_path):
    from vln.synthetic import generate_world

    data = tmp_path / "world"
    generate_world(data, houses=6, seed=3, face_size=16)
    out = tmp_path / "recipe"
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "synthetic_recipe.py"), "--data-dir", str(data),
                           "--seed", "1", "--out", str(out), "--speaker-iters", "3", "--follower-iters", "4",
                           "--aug-iters", "4", "--eval-every", "2"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((out / "recipe.json").read_text())
    assert set(result["wall_s"]) == {"phase1", "paths_and_instructions", "phase2"}
    assert all(v > 0 for v in result["wall_s"].values())
    assert [it for it, _ in result["follower_sr"]] == [2, 4]
    assert [it for it, _ in result["phase2_sr"]] == [2, 4]
    assert all(0.0 <= sr <= 1.0 for _, sr in result["follower_sr"] + result["phase2_sr"])
    assert 0.0 <= result["speaker_bleu4"] <= 1.0

    # phase 2 goes on from phase 1's follower, on the augmented file, with the recipe's settings
    params = json.loads((out / "phase2" / "params.json").read_text())
    assert Path(params["follower"]) == out / "follower" / "latest.pt"
    assert Path(params["aug_data"]) == out / "aug.json"
    assert params["seed"] == 1 and params["candidate_distance"] and params["candidate_lookahead"]
    assert params["lr"] == float(synthetic_recipe.PHASE2_FLAGS[1])
    # the speaker wrote one instruction for each augmentation path, every path of 4-7 edges
    paths = json.loads((out / "aug_paths.json").read_text())
    aug = json.loads((out / "aug.json").read_text())
    assert paths and [p["path"] for p in aug] == [p["path"] for p in paths]
    assert all(len(p["instructions"]) == 1 and p["instructions"][0].strip() for p in aug)
    assert all(4 <= len(p["path"]) - 1 <= synthetic_recipe.AUG_MAX_EDGES for p in aug)

    row = proc.stdout.strip().splitlines()[-1]
    assert row.startswith("| world, 1 | ") and row.endswith(" min) |"), row
    assert row == synthetic_recipe.table_row("world", 1, result)


def test_recipe_refuses_an_existing_output_folder(tmp_path, capsys):
    (tmp_path / "out").mkdir()
    with pytest.raises(SystemExit):
        synthetic_recipe.main(["--data-dir", str(tmp_path / "world"), "--out", str(tmp_path / "out")])
    assert "exists" in capsys.readouterr().err


def test_recipe_refuses_validations_it_would_never_reach(tmp_path, capsys):
    with pytest.raises(SystemExit):
        synthetic_recipe.main(["--data-dir", str(tmp_path / "world"), "--out", str(tmp_path / "out"),
                               "--aug-iters", "100", "--eval-every", "200"])
    assert "--eval-every 200 must be 1..100" in capsys.readouterr().err
    assert not (tmp_path / "world").exists()  # refused before generating anything


def test_a_failing_step_stops_the_run_quoting_its_log(tmp_path):
    code = "import sys; print('the step says why'); sys.exit(3)"
    step = synthetic_recipe.start("broken", ["-c", code], tmp_path)
    with pytest.raises(synthetic_recipe.StepFailed, match=r"(?s)'broken' exited with status 3.*the step says why"):
        synthetic_recipe.wait(step)
    assert (tmp_path / "broken.log").read_text().strip() == "the step says why"
