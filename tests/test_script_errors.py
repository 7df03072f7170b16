"""Expected conditions end a command in one line naming what to do, never a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "scripts" / script), *args], capture_output=True, text=True,
                          cwd=cwd, timeout=300)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    return last


def test_make_world_on_an_existing_world_names_overwrite(tmp_path):
    out = tmp_path / "world"
    out.mkdir()
    (out / "world.json").write_text(json.dumps({"seed": 0}))  # what marks a generated world
    line = one_line_error(run("make_world.py", "--out", str(out), "--houses", "1", "--quiet", cwd=tmp_path))
    assert str(out) in line and "--overwrite" in line
    assert sorted(p.name for p in out.iterdir()) == ["world.json"]  # nothing was touched


@pytest.mark.parametrize("args,expected", [
    (["--connectivity", "nope", "--scans", "s1", "--out", "x.json"], "connectivity directory nope does not exist"),
    (["--connectivity", ".", "--scans-from", "nope.json", "--out", "x.json"], "nope.json"),
])
def test_sample_aug_paths_missing_inputs(tmp_path, args, expected):
    assert expected in one_line_error(run("sample_aug_paths.py", *args, cwd=tmp_path))
    assert not (tmp_path / "x.json").exists()


def test_feature_extraction_refuses_a_missing_or_empty_connectivity_folder(tmp_path):
    from features.extract import list_viewpoints

    with pytest.raises(FileNotFoundError, match="connectivity directory .*nope does not exist"):
        list_viewpoints(tmp_path / "nope")  # a typo used to extract zero viewpoints and report success
    with pytest.raises(FileNotFoundError, match="neither scans.txt nor any <scan>_connectivity.json"):
        list_viewpoints(tmp_path)
