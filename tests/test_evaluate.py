"""The Evaluator and scripts/evaluate.py on the tiny house, with hand-computed aggregates."""
from __future__ import annotations

import gzip
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from graph_builders import TINY_SCAN, vp_id
from scripts.evaluate import main
from vln.errors import DataFormatError
from vln.evaluate import Evaluator, summarize
from vln.graph import NavGraph
from vln.metrics import EPISODE_KEYS
from vln.submission import SubmissionError, TrajectoryNotConnectedError, write_r2r_submission, write_rxr_submission

SQRT10 = math.sqrt(10.0)
REPO = Path(__file__).resolve().parents[1]


def ids(names: str) -> list[str]:
    return [vp_id(n) for n in names]


def poses(names: str) -> list[list]:
    return [[vp_id(n), 0.0, 0.0] for n in names]


def r2r_split() -> list[dict]:
    """Path 1 (A-B-C, 7 m) has four instructions, as 14 real training paths do; path 2 is D-C-B."""
    return [
        {"distance": 7.0, "scan": TINY_SCAN, "path_id": 1, "path": ids("ABC"), "heading": 0.0,
         "instructions": ["go", "walk", "move", "head"]},
        {"distance": 4 + SQRT10, "scan": TINY_SCAN, "path_id": 2, "path": ids("DCB"), "heading": 1.0,
         "instructions": ["back"]},
    ]


#: instr_id -> (trajectory, success, spl, trajectory_length, nav_error)
CASES = {
    "1_0": ("ABC", True, 1.0, 7.0, 0.0),
    "1_1": ("A", False, 0.0, 0.0, 7.0),
    "1_2": ("ABEBC", True, 7 / 13, 13.0, 0.0),
    "1_3": ("ADC", True, 7 / (5 + SQRT10), 5 + SQRT10, 0.0),
    "2_0": ("DCB", True, 1.0, 4 + SQRT10, 0.0),
}


@pytest.fixture
def split_file(tmp_path) -> Path:
    f = tmp_path / "R2R_tiny.json"
    f.write_text(json.dumps(r2r_split()))
    return f


@pytest.fixture
def evaluator(split_file, tiny_connectivity) -> Evaluator:
    return Evaluator.from_files(split_file, tiny_connectivity)


def submission(**override) -> dict:
    sub = {iid: poses(case[0]) for iid, case in CASES.items()}
    sub.update(override)
    return sub


def test_per_episode_records_and_means_match_hand_computation(evaluator):
    assert evaluator.instr_ids == ["1_0", "1_1", "1_2", "1_3", "2_0"]
    res = evaluator.score(submission())
    assert [r["instr_id"] for r in res.episodes] == list(CASES)
    for r in res.episodes:
        _, ok, spl, length, err = CASES[r["instr_id"]]
        assert set(r) == {"instr_id", "scan", *EPISODE_KEYS}
        assert r["success"] is ok and r["scan"] == TINY_SCAN
        assert r["spl"] == pytest.approx(spl, abs=1e-15)
        assert r["trajectory_length"] == pytest.approx(length, abs=1e-12)
        assert r["nav_error"] == pytest.approx(err, abs=1e-12)
    s = res.summary
    assert s["num_episodes"] == s["num_split_episodes"] == 5
    assert s["sr"] == s["success_rate"] == 0.8
    assert s["osr"] == s["oracle_rate"] == s["oracle_success_rate"] == 0.8
    assert s["spl"] == pytest.approx((1 + 0 + 7 / 13 + 7 / (5 + SQRT10) + 1) / 5, abs=1e-15)
    assert s["nav_error"] == pytest.approx(7 / 5) and s["oracle_error"] == pytest.approx(7 / 5)
    assert s["length"] == s["lengths"] == pytest.approx((7 + 0 + 13 + 5 + SQRT10 + 4 + SQRT10) / 5)
    assert s["steps"] == pytest.approx((2 + 0 + 4 + 2 + 2) / 5)
    assert s["ndtw"] == pytest.approx(sum(r["ndtw"] for r in res.episodes) / 5)
    assert 0 < s["sdtw"] < s["ndtw"] < 1 and 0 < s["cls"] < 1


def test_ground_truth_scores_perfectly_and_mappings_work_as_episodes(tiny_connectivity):
    eps = [{"instr_id": "x", "scan": TINY_SCAN, "path": ids("ABE")}, {"instr_id": "y", "scan": TINY_SCAN, "path": ids("DA")}]
    res = Evaluator(NavGraph(tiny_connectivity), eps).score({"x": ids("ABE"), "y": ids("DA")})
    for key in ("sr", "osr", "spl", "ndtw", "sdtw", "cls"):
        assert res.summary[key] == 1.0
    assert res.summary["nav_error"] == 0.0


def test_missing_unknown_and_partial_submissions(evaluator):
    sub = submission()
    del sub["1_3"]
    with pytest.raises(SubmissionError, match="misses 1 of 5 instruction ids.*1_3"):
        evaluator.score(sub)
    res = evaluator.score(sub, allow_partial=True)
    assert res.summary["num_episodes"] == 4 and res.summary["num_split_episodes"] == 5
    assert res.summary["sr"] == 0.75
    with pytest.raises(SubmissionError, match="instr_id 1_4.*not in the split"):
        evaluator.score(submission(**{"1_4": poses("A")}))


def test_bad_trajectories_are_errors_naming_the_instruction(evaluator):
    with pytest.raises(SubmissionError, match="instr_id 2_0.*not at the episode's start"):
        evaluator.score(submission(**{"2_0": poses("CB")}))
    with pytest.raises(TrajectoryNotConnectedError, match=f"instr_id 1_0.*{vp_id('A')} and {vp_id('C')}"):
        evaluator.score(submission(**{"1_0": poses("AC")}))


def test_test_splits_and_duplicate_ids_are_refused(tmp_path, tiny_connectivity):
    g = NavGraph(tiny_connectivity)
    with pytest.raises(DataFormatError, match="instr_id 5_0.*'path'.*only the start viewpoint"):
        Evaluator(g, [{"instr_id": "5_0", "scan": TINY_SCAN, "path": ids("A")}])
    dup = [{"instr_id": "5_0", "scan": TINY_SCAN, "path": ids("AB")}] * 2
    with pytest.raises(DataFormatError, match="instr_id 5_0 twice"):
        Evaluator(g, dup)
    # Scoring against a test split (no goal) from the command line: one line naming the split file.
    split = tmp_path / "R2R_test.json"
    split.write_text(json.dumps([{"path_id": 5, "scan": TINY_SCAN, "heading": 0.0, "path": ids("A"),
                                  "instructions": ["Wait here."]}]))
    sub = write_r2r_submission(tmp_path / "submit.json", {"5_0": poses("A")})
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), "--data", str(split),
                           "--connectivity", str(tiny_connectivity), "--submission", str(sub)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: {split}, record instr_id 5_0, field 'path'") and "test split" in last


def test_summarize_refuses_nothing():
    with pytest.raises(ValueError):
        summarize([])


def test_rxr_split_and_submission(tmp_path, tiny_connectivity):
    rec = {"instruction_id": 31, "language": "hi-IN", "path_id": 8, "scan": TINY_SCAN, "path": ids("ABC"),
           "heading": 0.0, "instruction": "chalo"}
    data = tmp_path / "rxr_tiny_guide.jsonl.gz"
    data.write_bytes(gzip.compress((json.dumps(rec) + "\n").encode()))
    sub = write_rxr_submission(tmp_path / "rxr_submit.jsonl", {31: poses("ABBEBC")})
    res = Evaluator.from_files(data, tiny_connectivity).score_file(sub)
    (r,) = res.episodes
    assert r["instr_id"] == "31" and r["steps"] == 4  # the turn in place was written once
    assert r["spl"] == pytest.approx(7 / 13) and r["success"]


def test_script_prints_the_summary_and_writes_per_episode_records(tmp_path, split_file, tiny_connectivity, capsys):
    sub = write_r2r_submission(tmp_path / "submit.json", submission())
    per = tmp_path / "out" / "episodes.json"
    summary = main(["--data", str(split_file), "--connectivity", str(tiny_connectivity),
                    "--submission", str(sub), "--per-episode", str(per)])
    printed = json.loads(capsys.readouterr().out)
    assert printed == summary and printed["sr"] == 0.8
    records = json.loads(per.read_text())
    assert [r["instr_id"] for r in records] == list(CASES)
    assert records[2]["spl"] == pytest.approx(7 / 13)


def test_script_partial_flag_and_error_exit(tmp_path, split_file, tiny_connectivity, capsys):
    sub = submission()
    del sub["2_0"]
    f = write_r2r_submission(tmp_path / "partial.json", sub)
    args = ["--data", str(split_file), "--connectivity", str(tiny_connectivity), "--submission", str(f)]
    with pytest.raises(SubmissionError, match="misses 1 of 5"):
        main(args)
    assert main(args + ["--allow-partial"])["num_episodes"] == 4
    # As a command, a bad submission ends with a one-line error naming the file, not a traceback.
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "evaluate.py"), *args],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(f"error: {f}")
