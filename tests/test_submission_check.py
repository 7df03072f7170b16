"""scripts/evaluate.py --validate-only: a test-split submission checked on its own before upload."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from graph_builders import TINY_EDGES, TINY_POSITIONS, TINY_SCAN, vp_id, write_graph
from scripts.evaluate import main
from vln.submission_check import InvalidSubmission

REPO = Path(__file__).resolve().parents[1]


def ids(names: str) -> list[str]:
    return [vp_id(n) for n in names]


def poses(names: str) -> list[list]:
    return [[vp_id(n), 0.5, -0.1] for n in names]


@pytest.fixture
def root(tmp_path) -> Path:
    """``R2R/R2R_test.json`` (starts only, as the real test split) and ``R2R/R2R_val_unseen.json``
    beside ``connectivity/``."""
    write_graph(tmp_path / "connectivity", TINY_SCAN, TINY_POSITIONS, TINY_EDGES, excluded={"F"})
    (tmp_path / "R2R").mkdir()
    test = [{"scan": TINY_SCAN, "path_id": 5, "path": ids("A"), "heading": 0.0, "instructions": ["go", "walk"]},
            {"scan": TINY_SCAN, "path_id": 6, "path": ids("D"), "heading": 1.0, "instructions": ["back"]}]
    val = [{"scan": TINY_SCAN, "path_id": 9, "path": ids("BC"), "heading": 0.0, "instructions": ["up"],
            "distance": 4.0}]
    (tmp_path / "R2R" / "R2R_test.json").write_text(json.dumps(test))
    (tmp_path / "R2R" / "R2R_val_unseen.json").write_text(json.dumps(val))
    return tmp_path


def valid() -> list[dict]:
    return [{"instr_id": "5_0", "trajectory": poses("ABBC")}, {"instr_id": "5_1", "trajectory": poses("A")},
            {"instr_id": "6_0", "trajectory": poses("DC")}]


def check(root: Path, items, *extra: str):
    sub = root / "submit.json"
    sub.write_text(json.dumps(items))
    return main(["--validate-only", "--submission", str(sub), "--data", str(root / "R2R" / "R2R_test.json"), *extra])


def test_a_valid_test_submission_prints_one_ok_line(root, capsys):
    assert check(root, valid()) == {"valid": True, "trajectories": 3}
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith(f"OK: {root / 'submit.json'} is a valid R2R submission") and "3 trajectories" in out[0]
    # the split named by --data-dir/--split, the connectivity given explicitly
    sub = str(root / "submit.json")
    assert main(["--validate-only", "--submission", sub, "--data-dir", str(root), "--split", "test",
                 "--connectivity", str(root / "connectivity")])["valid"]


def _replace(iid: str, trajectory):
    return [dict(r, trajectory=trajectory) if r["instr_id"] == iid else r for r in valid()]


@pytest.mark.parametrize("items,record,field,problem", [
    (valid()[:2], None, "instr_id", "misses 1 of the 3 instructions"),
    (valid() + [valid()[0]], "instr_id 5_0", "instr_id", "appears more than once (records 0 and 3)"),
    (valid() + [{"instr_id": "77_0", "trajectory": poses("A")}], "instr_id 77_0", "instr_id", "is not in the split"),
    (_replace("5_0", ids("ABC")), "instr_id 5_0", "trajectory", "step 0 must be [viewpoint_id, heading, elevation]"),
    (_replace("5_0", [[vp_id("A"), "0", 0.0]]), "instr_id 5_0", "trajectory", "finite numbers (radians)"),
    (_replace("5_0", []), "instr_id 5_0", "trajectory", "must be a non-empty list"),
    (_replace("6_0", poses("AB")), "instr_id 6_0", "trajectory", f"starts at {vp_id('A')}, not at the episode's start"),
    (_replace("5_0", poses("AC")), "instr_id 5_0", "trajectory", f"{vp_id('A')} and {vp_id('C')}"),
    (_replace("5_0", poses("AF")), "instr_id 5_0", "trajectory", "is excluded from the connectivity graph"),
    (_replace("5_0", poses("A") + [["otherScanViewpoint", 0.0, 0.0]]), "instr_id 5_0", "trajectory",
     "step 1: viewpoint otherScanViewpoint is not in the connectivity graph of scan tinyScan0001"),
    ([{"instr_id": 5, "trajectory": poses("A")}] + valid()[1:], "0", "instr_id", "must be a string like '123_0'"),
    ([{"instr_id": "5_0"}] + valid()[1:], "instr_id 5_0", "trajectory", "is missing"),
    ({"5_0": poses("A")}, None, None, "must be a JSON list of objects"),
])
def test_each_problem_names_record_and_field(root, items, record, field, problem):
    with pytest.raises(InvalidSubmission) as e:
        check(root, items)
    where = str(root / "submit.json") + (f", record {record}" if record else "") + (f", field {field!r}" if field else "")
    hits = [str(err) for err in e.value.errors if str(err).startswith(where + ":")]
    assert hits and problem in hits[0], (where, [str(x) for x in e.value.errors])


def test_every_problem_is_listed_and_another_splits_ids_are_named(root):
    items = _replace("5_0", poses("AC"))[:2] + [{"instr_id": "9_0", "trajectory": poses("BC")}]  # 6_0 missing
    with pytest.raises(InvalidSubmission) as e:
        check(root, items)
    text = str(e.value)
    assert "(3 problems)" in text and len(e.value.errors) == 3
    assert f"all are instr_ids of {root / 'R2R' / 'R2R_val_unseen.json'}" in text  # the split 9_0 belongs to
    assert "misses 1 of the 3" in text and "6_0" in text and f"{vp_id('A')} and {vp_id('C')}" in text


def test_command_line_exit_status_and_message(root):
    sub = root / "submit.json"
    base = [sys.executable, str(REPO / "scripts" / "evaluate.py"), "--validate-only", "--submission", str(sub),
            "--data", str(root / "R2R" / "R2R_test.json")]
    sub.write_text(json.dumps(valid()))
    ok = subprocess.run(base, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert ok.returncode == 0 and ok.stdout.startswith("OK: ") and len(ok.stdout.strip().splitlines()) == 1
    sub.write_text(json.dumps(valid()[:2]))
    bad = subprocess.run(base, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr
    assert f"error: {sub} is not a valid submission (1 problem):" in bad.stderr and "misses 1 of the 3" in bad.stderr
    (root / "connectivity").rename(root / "graphs")
    none = subprocess.run(base, capture_output=True, text=True, cwd=REPO, timeout=120)
    assert none.returncode == 1 and none.stderr.strip().splitlines()[-1].startswith("error: no --connectivity given")


def test_real_test_split(real_data, tmp_path, capsys):
    """The real R2R test split: staying at the start is a valid submission; a step to a
    viewpoint not adjacent to the start is caught, naming its instr_id."""
    split = json.loads((real_data / "R2R" / "R2R_test.json").read_text())
    items = [{"instr_id": f"{r['path_id']}_{k}", "trajectory": [[r["path"][0], r["heading"], 0.0]]}
             for r in split for k in range(len(r["instructions"]))]
    sub = tmp_path / "submit_test.json"
    sub.write_text(json.dumps(items))
    args = ["--validate-only", "--submission", str(sub), "--data", str(real_data / "R2R" / "R2R_test.json")]
    assert main(args) == {"valid": True, "trajectories": len(items)} and len(items) > 4000
    assert capsys.readouterr().out.startswith("OK: ")
    other = split[1]["path"][0]  # another episode's start, in general neither here nor a neighbour
    items[0]["trajectory"].append([other, 0.0, 0.0])
    sub.write_text(json.dumps(items))
    with pytest.raises(InvalidSubmission) as e:
        main(args)
    assert len(e.value.errors) == 1 and f"record instr_id {items[0]['instr_id']}, field 'trajectory'" in str(e.value)
