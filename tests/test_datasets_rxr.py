"""RxR guide files: gzip JSON Lines round trips, the language filter, validation errors."""
from __future__ import annotations

import gzip
import json
import pickle

import pytest

from graph_builders import TINY_SCAN, vp_id
from vln.datasets import Episode, language_matches, load_rxr, load_split, write_rxr
from vln.errors import DataFormatError, NotConnectedError
from vln.graph import NavGraph

A, B, C, D, E, F = (vp_id(n) for n in "ABCDEF")


def rxr_json(**over):
    rec = {"split": "val_seen", "instruction_id": 26, "annotator_id": 19, "language": "en-IN", "path_id": 11,
           "scan": TINY_SCAN, "path": [A, B, C], "heading": 3.105381634905035,
           "instruction": "Okay, now you are in a room facing two bathtubs.",
           "timed_instruction": [{"start_time": 0.4, "word": "Okay,", "end_time": 1.0}, {"word": "now"}],
           "edit_distance": 0.11137440758293839}
    rec.update(over)
    return {k: v for k, v in rec.items() if v is not _DROP}


_DROP = object()


def write_lines(path, lines):
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for line in lines:
            f.write((line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n")
    return path


@pytest.fixture
def records():
    return [
        rxr_json(),
        rxr_json(instruction_id=27, language="hi-IN", annotator_id=3, path=[D, A, B, E],
                 instruction="सीधे जाइए और फिर बाएँ मुड़िए।", timed_instruction=[]),
        rxr_json(instruction_id=28, language="te-IN", path=[E, B], path_id=12, instruction="ముందుకు వెళ్ళి ఆగండి."),
        rxr_json(instruction_id=29, language="en-US", path=[A]),
    ]


def test_load_reads_every_field(tmp_path, records):
    f = write_lines(tmp_path / "rxr_val_seen_guide.jsonl.gz", records)
    eps = load_rxr(f)
    assert [e.instr_id for e in eps] == ["26", "27", "28", "29"]
    e = eps[1]
    assert (e.path_id, e.scan, e.path, e.language, e.distance) == (11, TINY_SCAN, (D, A, B, E), "hi-IN", None)
    assert e.instruction == "सीधे जाइए और फिर बाएँ मुड़िए।" and e.heading == pytest.approx(3.105381634905035)
    assert dict(eps[0].extras) == {"split": "val_seen", "annotator_id": 19, "edit_distance": 0.11137440758293839,
                                   "timed_instruction": records[0]["timed_instruction"]}
    assert eps[0].source == str(f)
    with pytest.raises(TypeError, match="read-only"):
        eps[0].extras["annotator_id"] = 3
    assert pickle.loads(pickle.dumps(eps)) == eps  # episodes travel to vector-env workers
    assert dict(pickle.loads(pickle.dumps(eps[0])).extras) == dict(eps[0].extras)


def test_round_trip_is_byte_stable_and_keeps_optional_fields(tmp_path, records):
    f = write_lines(tmp_path / "in.jsonl.gz", records)
    out = write_rxr(tmp_path / "out" / "rxr_x_guide.jsonl.gz", load_rxr(f))
    lines = gzip.decompress(out.read_bytes()).decode().splitlines()
    assert [json.loads(x) for x in lines] == records
    assert list(json.loads(lines[0])) == list(records[0])  # the README's key order
    again = write_rxr(tmp_path / "again.jsonl.gz", load_rxr(out))
    assert again.read_bytes() == out.read_bytes()  # no timestamp in the gzip header
    plain = write_rxr(tmp_path / "plain.jsonl", load_rxr(out))  # uncompressed JSON Lines too
    assert load_rxr(plain) == load_rxr(out)


def test_writer_accepts_minimal_episodes_and_json(tmp_path):
    ep = Episode("5", 2, TINY_SCAN, (A, B), 0.5, "walk", None, "en-US")
    f = write_rxr(tmp_path / "x.jsonl.gz", [ep, rxr_json(instruction_id=6)])
    first = json.loads(gzip.decompress(f.read_bytes()).decode().splitlines()[0])
    assert first == {"instruction_id": 5, "language": "en-US", "path_id": 2, "scan": TINY_SCAN, "path": [A, B],
                     "heading": 0.5, "instruction": "walk"}
    with pytest.raises(ValueError, match="integer instruction_id"):
        write_rxr(tmp_path / "y.jsonl.gz", [Episode("5_0", 5, TINY_SCAN, (A,), 0.0, "x")])
    with pytest.raises(DataFormatError, match="is duplicated"):
        write_rxr(tmp_path / "y.jsonl.gz", [ep, ep])
    assert not (tmp_path / "y.jsonl.gz").exists()


@pytest.mark.parametrize(
    "wanted, ids",
    [(None, ["26", "27", "28", "29"]), ("en", ["26", "29"]), ("en-IN", ["26"]), ("EN-us", ["29"]),
     ("hi", ["27"]), (["hi", "te-IN"], ["27", "28"]), ("e", [])],
)
def test_language_filter(tmp_path, records, wanted, ids):
    f = write_lines(tmp_path / "x.jsonl.gz", records)
    assert [e.instr_id for e in load_rxr(f, language=wanted)] == ids


def test_language_matches_prefix_only_at_subtag_boundary():
    assert language_matches("en-IN", "en") and not language_matches("en-IN", "e")
    assert not language_matches("te-IN", "en")


def test_graph_validation(tmp_path, tiny_connectivity, records):
    nav = NavGraph(tiny_connectivity)
    assert len(load_rxr(write_lines(tmp_path / "ok.jsonl.gz", records), graph=nav)) == 4
    bad = write_lines(tmp_path / "bad.jsonl.gz", [records[0], rxr_json(instruction_id=40, path=[A, C])])
    load_rxr(bad)  # schema only
    with pytest.raises(NotConnectedError, match=r"bad.jsonl.gz, record line 2 \(instruction_id 40\).*not connected"):
        load_rxr(bad, graph=nav)
    bad = write_lines(tmp_path / "bad2.jsonl.gz", [rxr_json(instruction_id=41, path=[A, "f" * 32])])
    with pytest.raises(DataFormatError, match=r"line 1 \(instruction_id 41\), field 'path'.*not in the connectivity"):
        load_rxr(bad, graph=nav)
    bad = write_lines(tmp_path / "bad3.jsonl.gz", [rxr_json(path=[A, F])])
    with pytest.raises(DataFormatError, match="excluded"):
        load_rxr(bad, graph=nav, language="hi")  # filtered-out lines are still checked


@pytest.mark.parametrize(
    "record, field, problem",
    [
        (rxr_json(instruction_id=_DROP), "instruction_id", "is missing"),
        (rxr_json(language=_DROP), "language", "is missing"),
        (rxr_json(instruction=_DROP), "instruction", "is missing"),
        (rxr_json(instruction_id="26"), "instruction_id", "must be an integer"),
        (rxr_json(path_id=11.0), "path_id", "must be an integer"),
        (rxr_json(heading=None), "heading", "must be a finite number"),
        (rxr_json(annotator_id="x"), "annotator_id", "must be an integer"),
        (rxr_json(edit_distance="0.1"), "edit_distance", "must be a finite number"),
        (rxr_json(timed_instruction=[{"start_time": 1.0}]), "timed_instruction", "entry 0"),
        (rxr_json(timed_instruction=[{"word": "a", "end_time": "1"}]), "end_time", "must be a finite number"),
    ],
)
def test_schema_errors_name_file_line_and_field(tmp_path, record, field, problem):
    f = write_lines(tmp_path / "rxr_bad_guide.jsonl.gz", [rxr_json(instruction_id=1), record])
    with pytest.raises(DataFormatError) as ei:
        load_rxr(f)
    err = ei.value
    assert err.path == str(f) and err.field == field and problem in err.problem
    assert str(err.record).startswith("line 2")


def test_file_level_errors(tmp_path):
    f = write_lines(tmp_path / "a.jsonl.gz", [rxr_json(instruction_id=1), "", rxr_json(instruction_id=2), "{oops"])
    with pytest.raises(DataFormatError, match=r"a.jsonl.gz, record line 4: is not valid JSON"):
        load_rxr(f)
    f = write_lines(tmp_path / "b.jsonl.gz", [rxr_json(), rxr_json()])
    with pytest.raises(DataFormatError, match=r"line 2 \(instruction_id 26\).*duplicated \(first on line 1\)"):
        load_rxr(f)
    f = write_lines(tmp_path / "c.jsonl.gz", ["[1, 2]"])
    with pytest.raises(DataFormatError, match="line 1: must be a JSON object"):
        load_rxr(f)
    f = tmp_path / "d.jsonl.gz"
    f.write_text(json.dumps(rxr_json()))
    with pytest.raises(DataFormatError, match="d.jsonl.gz: cannot be read as gzip JSON Lines"):
        load_rxr(f)
    with pytest.raises(FileNotFoundError):
        load_rxr(tmp_path / "absent.jsonl.gz")


def test_load_split_layout(tmp_path, records):
    (tmp_path / "RxR").mkdir()
    write_lines(tmp_path / "RxR" / "rxr_val_unseen_guide.jsonl.gz", records)
    write_lines(tmp_path / "RxR" / "rxr_test_standard_public_guide.jsonl.gz", records[:1])
    assert [e.language for e in load_split("rxr", tmp_path, "val_unseen", language="te")] == ["te-IN"]
    assert len(load_split("rxr", tmp_path, "test_standard")) == 1
    with pytest.raises(FileNotFoundError, match="test_standard, val_unseen"):
        load_split("rxr", tmp_path, "train")
