"""R2R reader/writer: round trips, expansion into episodes, validation errors, the dataset registry."""
from __future__ import annotations

import json
import math

import pytest

from graph_builders import TINY_SCAN, vp_id
from vln.datasets import (DATASETS, Episode, PathRecord, episodes_to_path_records, load_r2r, load_split,
                          read_r2r_paths, write_r2r)
from vln.errors import DataFormatError, NotConnectedError
from vln.graph import NavGraph
from vln.registry import NameNotFound

A, B, C, D, E, F = (vp_id(n) for n in "ABCDEF")


def r2r_json(**over):
    rec = {"distance": 7.0, "scan": TINY_SCAN, "path_id": 17, "path": [A, B, C], "heading": 1.25,
           "instructions": ["Walk to the kitchen. ", "Go past the couch and stop."]}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


_DROP = object()


def write_raw(path, records):
    path.write_text(json.dumps(records))
    return path


@pytest.fixture
def three_paths():
    return [
        PathRecord(17, TINY_SCAN, (A, B, C), 1.25, ("Walk to the kitchen. ", "Go past the couch."), 7.0),
        PathRecord(4, TINY_SCAN, (D, A, B, E), 0.0, ("Turn left!", "Exit the room.", "Stop at the door."), 11.0),
        PathRecord(9, TINY_SCAN, (E,), 6.2, ("Find the stairs.",), None),  # a test-split path
    ]


def test_round_trip_keeps_every_field_and_the_original_key_order(tmp_path, three_paths):
    f = write_r2r(tmp_path / "out" / "R2R_x.json", three_paths)
    assert read_r2r_paths(f) == three_paths
    raw = json.loads(f.read_text())
    assert list(raw[0]) == ["distance", "scan", "path_id", "path", "heading", "instructions"]
    assert "distance" not in raw[2]  # the test split has no distance field
    assert [p.name for p in f.parent.iterdir()] == ["R2R_x.json"]  # no temporary file left


def test_load_expands_one_episode_per_instruction(tmp_path, three_paths):
    f = write_r2r(tmp_path / "R2R_x.json", three_paths)
    eps = load_r2r(f)
    assert [e.instr_id for e in eps] == ["17_0", "17_1", "4_0", "4_1", "4_2", "9_0"]
    e = eps[3]
    assert (e.path_id, e.scan, e.path, e.heading, e.instruction, e.distance, e.language) == (
        4, TINY_SCAN, (D, A, B, E), 0.0, "Exit the room.", 11.0, "en")
    assert e.source == str(f) and e.start == D and e.goal == E
    assert eps[-1].distance is None and eps[-1].path == (E,)


def test_episodes_write_back_to_the_same_file(tmp_path, three_paths):
    f = write_r2r(tmp_path / "a.json", three_paths)
    g = write_r2r(tmp_path / "b.json", load_r2r(f))
    assert f.read_bytes() == g.read_bytes()


def test_episodes_of_one_path_must_agree():
    e1 = Episode("3_0", 3, TINY_SCAN, (A, B), 0.0, "x", 3.0)
    e2 = Episode("3_1", 3, TINY_SCAN, (A, D), 0.0, "y", 5.0)
    with pytest.raises(ValueError, match="path_id 3"):
        episodes_to_path_records([e1, e2])


def test_episode_is_frozen_and_hashable():
    e = Episode("3_0", 3, TINY_SCAN, [A, B], 0.5, "x", 3.0)
    assert isinstance(e.path, tuple)
    with pytest.raises(AttributeError):
        e.heading = 1.0
    assert len({e, Episode("3_0", 3, TINY_SCAN, (A, B), 0.5, "x", 3.0)}) == 1


def test_uninstructed_paths(tmp_path):
    f = write_r2r(tmp_path / "aug.json", [PathRecord(1, TINY_SCAN, (A, B), 0.3, (), 3.0)])
    assert json.loads(f.read_text())[0]["instructions"] == []
    with pytest.raises(DataFormatError, match=r"path_id 1.*'instructions'.*uninstructed='empty'"):
        load_r2r(f)
    (ep,) = load_r2r(f, uninstructed="empty")
    assert (ep.instr_id, ep.instruction) == ("1_0", "")
    assert load_r2r(f, uninstructed="skip") == []
    assert write_r2r(tmp_path / "again.json", [ep]).read_text() == f.read_text()


def test_graph_validation_accepts_valid_paths(tmp_path, tiny_connectivity, three_paths):
    f = write_r2r(tmp_path / "R2R_x.json", three_paths)
    assert len(load_r2r(f, graph=NavGraph(tiny_connectivity))) == 6


@pytest.mark.parametrize(
    "record, field, problem",
    [
        (r2r_json(scan=_DROP), "scan", "is missing"),
        (r2r_json(path=_DROP), "path", "is missing"),
        (r2r_json(heading=_DROP), "heading", "is missing"),
        (r2r_json(instructions=_DROP), "instructions", "is missing"),
        (r2r_json(path_id="17"), "path_id", "must be an integer"),
        (r2r_json(path_id=True), "path_id", "must be an integer"),
        (r2r_json(heading="north"), "heading", "must be a finite number"),
        (r2r_json(distance=None), "distance", "must be a finite number"),
        (r2r_json(instructions="Walk."), "instructions", "must be a list of strings"),
        (r2r_json(path=[]), "path", "must be a non-empty list"),
        (r2r_json(path=[A, 5]), "path", "must be a list of strings"),
    ],
)
def test_schema_errors_name_file_record_and_field(tmp_path, record, field, problem):
    f = write_raw(tmp_path / "R2R_bad.json", [r2r_json(path_id=3), record])
    with pytest.raises(DataFormatError) as ei:
        read_r2r_paths(f)
    err = ei.value
    assert err.path == str(f) and err.field == field and problem in err.problem
    assert err.record in ("path_id 17", 1)  # the path_id, or the index when the path_id itself is bad
    assert "R2R_bad.json" in str(err)


@pytest.mark.parametrize(
    "record, exc, pattern",
    [
        (r2r_json(path=[A, "0" * 32]), DataFormatError, r"path_id 17, field 'path'.*not in the connectivity graph"),
        (r2r_json(path=[A, F]), DataFormatError, r"path_id 17, field 'path'.*excluded"),
        (r2r_json(scan="noSuchScan"), DataFormatError, r"path_id 17, field 'scan'.*no connectivity graph"),
        (r2r_json(path=[A, C]), NotConnectedError, r"R2R_bad.json, record path_id 17.*not connected"),
    ],
)
def test_graph_errors_name_file_and_record(tmp_path, tiny_connectivity, record, exc, pattern):
    f = write_raw(tmp_path / "R2R_bad.json", [record])
    read_r2r_paths(f)  # the schema is fine: only the graph can tell
    with pytest.raises(exc, match=pattern):
        read_r2r_paths(f, graph=NavGraph(tiny_connectivity))


def test_file_level_errors(tmp_path):
    bad = tmp_path / "R2R_bad.json"
    bad.write_text('[{"scan": "x",')
    with pytest.raises(DataFormatError, match=r"R2R_bad.json: is not valid JSON \(line 1"):
        read_r2r_paths(bad)
    write_raw(bad, {"scan": "x"})
    with pytest.raises(DataFormatError, match="JSON list"):
        read_r2r_paths(bad)
    write_raw(bad, [r2r_json(), r2r_json(path_id=17)])
    with pytest.raises(DataFormatError, match=r"path_id 17, field 'path_id': is duplicated"):
        read_r2r_paths(bad)
    with pytest.raises(FileNotFoundError):
        read_r2r_paths(tmp_path / "absent.json")


def test_writer_validates_json_input_and_leaves_old_file_intact(tmp_path):
    f = write_r2r(tmp_path / "R2R_x.json", [r2r_json()])
    before = f.read_bytes()
    with pytest.raises(DataFormatError, match="'heading'"):
        write_r2r(f, [r2r_json(path_id=1), r2r_json(path_id=2, heading=math.inf)])
    assert f.read_bytes() == before


def test_registry_and_load_split(tmp_path, tiny_connectivity, three_paths):
    write_r2r(tmp_path / "R2R" / "R2R_val_seen.json", three_paths)
    assert {"r2r", "rxr"} <= set(DATASETS.names())
    eps = load_split("r2r", tmp_path, "val_seen", graph=NavGraph(tiny_connectivity))
    assert len(eps) == 6
    with pytest.raises(FileNotFoundError, match=r"R2R_train.json does not exist.*val_seen"):
        load_split("r2r", tmp_path, "train")
    with pytest.raises(NameNotFound, match="Did you mean 'r2r'"):
        load_split("r2r_", tmp_path, "val_seen")
