"""R2R and RxR submission files: round trips, malformed files, validation against a split."""
from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from graph_builders import TINY_SCAN, vp_id
from vln.datasets.episode import Episode
from vln.errors import NotConnectedError
from vln.graph import NavGraph
from vln.submission import (
    SubmissionError,
    TrajectoryNotConnectedError,
    read_r2r_submission,
    read_rxr_submission,
    read_submission,
    validate_submission,
    write_r2r_submission,
    write_rxr_submission,
)


def ids(names: str) -> list[str]:
    return [vp_id(n) for n in names]


def poses(names: str) -> list[list]:
    return [[vp_id(n), 0.25 * k, -0.1] for k, n in enumerate(names)]


def episode(instr_id: str, names: str) -> Episode:
    return Episode(instr_id=instr_id, path_id=int(instr_id.split("_")[0]), scan=TINY_SCAN, path=tuple(ids(names)),
                   heading=0.0, instruction="go")


@pytest.fixture
def graphs(tiny_connectivity):
    return NavGraph(tiny_connectivity)


@pytest.fixture
def split():
    return [episode("1_0", "ABC"), episode("1_1", "ABC"), episode("2_0", "DAB")]


def test_r2r_round_trip_keeps_order_and_poses(tmp_path):
    sub = {"2_0": poses("DAB"), "1_0": poses("ABBC"), "1_1": poses("A")}
    out = write_r2r_submission(tmp_path / "sub" / "submit.json", sub)
    raw = json.loads(out.read_text())
    assert [item["instr_id"] for item in raw] == ["2_0", "1_0", "1_1"]
    assert raw[1]["trajectory"][2] == [vp_id("B"), 0.5, -0.1]
    back = read_r2r_submission(out)
    assert list(back) == ["2_0", "1_0", "1_1"]
    assert back["1_0"] == [tuple(e) for e in sub["1_0"]]
    assert [p.name for p in out.parent.iterdir()] == ["submit.json"]  # no temporary left behind
    # The list-of-objects form round-trips too.
    again = write_r2r_submission(tmp_path / "again.json", raw)
    assert json.loads(again.read_text()) == raw


def test_r2r_writer_needs_poses(tmp_path):
    with pytest.raises(SubmissionError, match="instr_id 1_0.*heading, elevation"):
        write_r2r_submission(tmp_path / "s.json", {"1_0": ids("AB")})
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"instr_id": "1_0"}', "must be a JSON list"),
        ('[["1_0"]]', "record 0: must be a JSON object"),
        ('[{"instr_id": 10, "trajectory": []}]', "record 0, field 'instr_id'"),
        ('[{"instr_id": "1_0"}]', "instr_id 1_0, field 'trajectory': is missing"),
        ('[{"instr_id": "1_0", "trajectory": []}]', "instr_id 1_0, field 'trajectory': must be a non-empty list"),
        ('[{"instr_id": "1_0", "trajectory": [["a", 0.0]]}]', "step 0 must be \\[viewpoint_id, heading, elevation\\]"),
        ('[{"instr_id": "1_0", "trajectory": [["a", NaN, 0.0]]}]', "step 0: heading and elevation must be finite"),
        ('[{"instr_id": "1_0", "trajectory": [["a", "0", 0.0]]}]', "must be finite numbers"),
        ('[{"instr_id": "1_0", "trajectory": [["a", 0, 0]]}, {"instr_id": "1_0", "trajectory": [["a", 0, 0]]}]',
         "instr_id 1_0, field 'instr_id': appears more than once"),
    ],
)
def test_malformed_r2r_files_name_the_file_record_and_field(tmp_path, content, match):
    f = tmp_path / "bad.json"
    f.write_text(content)
    with pytest.raises(SubmissionError, match=match) as e:
        read_r2r_submission(f)
    assert str(f) in str(e.value)


@pytest.mark.parametrize("name", ["submit.jsonl", "submit.jsonl.gz"])
def test_rxr_round_trip_collapses_turns_in_place(tmp_path, name):
    out = write_rxr_submission(tmp_path / name, {"17": poses("AABBC"), 4: ids("DA")})
    opener = gzip.open if name.endswith(".gz") else open
    with opener(out, "rt") as f:
        lines = [json.loads(line) for line in f]
    assert lines == [{"instruction_id": 17, "path": ids("ABC")}, {"instruction_id": 4, "path": ids("DA")}]
    assert read_submission(out) == {"17": ids("ABC"), "4": ids("DA")}


def test_rxr_reader_and_writer_reject_bad_ids(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text('{"instruction_id": 3, "path": ["a"]}\n{"instruction_id": "4", "path": ["a"]}\n')
    with pytest.raises(SubmissionError, match="line 2, field 'instruction_id'"):
        read_rxr_submission(f)
    f.write_text('{"instruction_id": 3, "path": ["a"]}\n{"instruction_id": 3, "path": ["b"]}\n')
    with pytest.raises(SubmissionError, match="instr_id 3.*more than once"):
        read_rxr_submission(f)
    f.write_text('{"instruction_id": 3}\n')
    with pytest.raises(SubmissionError, match="instr_id 3, field 'path': is missing"):
        read_rxr_submission(f)
    with pytest.raises(SubmissionError, match="must be an integer"):
        write_rxr_submission(tmp_path / "w.jsonl", {"1_0": ids("A")})


def test_validate_accepts_a_complete_submission_and_returns_indices(graphs, split):
    g = graphs[TINY_SCAN]
    out = validate_submission({"2_0": poses("DAB"), "1_0": poses("ABBC"), "1_1": ids("A")}, split, graphs)
    assert list(out) == ["2_0", "1_0", "1_1"]
    assert out["1_0"].tolist() == [g.index[v] for v in ids("ABBC")]
    assert out["1_0"].dtype == np.int64


def test_validate_reports_missing_and_unknown_ids(graphs, split):
    with pytest.raises(SubmissionError, match="misses 1 of 3 instruction ids.*2_0"):
        validate_submission({"1_0": poses("ABC"), "1_1": poses("A")}, split, graphs, source="s.json")
    partial = validate_submission({"1_0": poses("ABC")}, split, graphs, allow_partial=True)
    assert list(partial) == ["1_0"]
    with pytest.raises(SubmissionError, match="instr_id 9_0.*not in the split"):
        validate_submission({"1_0": poses("ABC"), "9_0": poses("A")}, split, graphs, allow_partial=True)
    dup = [{"instr_id": "1_0", "trajectory": poses("A")}] * 2
    with pytest.raises(SubmissionError, match="more than once"):
        validate_submission(dup, split, graphs, allow_partial=True)


def test_validate_checks_start_viewpoints_and_connectivity(graphs, split):
    full = {"1_0": poses("ABC"), "1_1": poses("ABC"), "2_0": poses("DAB")}
    with pytest.raises(SubmissionError, match=f"instr_id 1_1.*starts at {vp_id('B')}.*start viewpoint {vp_id('A')}"):
        validate_submission({**full, "1_1": poses("BC")}, split, graphs)
    with pytest.raises(TrajectoryNotConnectedError, match=f"instr_id 2_0.*{vp_id('D')} and {vp_id('B')}") as e:
        validate_submission({**full, "2_0": poses("DDB")}, split, graphs)
    assert isinstance(e.value, NotConnectedError) and "steps 1 and 2" in str(e.value)
    with pytest.raises(SubmissionError, match=f"instr_id 1_0.*step 1: viewpoint {vp_id('F')} is excluded"):
        validate_submission({**full, "1_0": poses("AF")}, split, graphs)
    with pytest.raises(SubmissionError, match="instr_id 1_0.*step 1: viewpoint zzz is not in"):
        validate_submission({**full, "1_0": [vp_id("A"), "zzz"]}, split, graphs)
    with pytest.raises(SubmissionError, match="instr_id 1_0.*finite"):
        validate_submission({**full, "1_0": [[vp_id("A"), float("inf"), 0.0]]}, split, graphs)
