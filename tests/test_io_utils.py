"""Atomic writes: the permissions a plain write would give, durable renames, nothing half-written."""
from __future__ import annotations

import os
import stat
from contextlib import contextmanager

import pytest

from synthetic_helpers import small_world  # noqa: F401 - fixture
from vln.io_utils import atomic_path, atomic_write_bytes, atomic_write_json, atomic_write_text

posix_only = pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits and umask")


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@posix_only
@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002, 0o077], ids=oct)
def test_new_files_get_0666_minus_the_umask_like_a_plain_open(tmp_path, mask):
    with umask(mask):
        with open(tmp_path / "plain.txt", "w") as f:
            f.write("x")
        atomic_write_text(tmp_path / "text.txt", "x")
        atomic_write_json(tmp_path / "sub" / "params.json", {"lr": 1e-4})
        with atomic_path(tmp_path / "export.bin") as tmp:
            tmp.write_bytes(b"\0")
    assert mode(tmp_path / "plain.txt") == 0o666 & ~mask
    for name in ("text.txt", "sub/params.json", "export.bin"):
        assert mode(tmp_path / name) == 0o666 & ~mask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.bin", "plain.txt", "sub", "text.txt"]


@posix_only
@pytest.mark.parametrize("existing", [0o600, 0o640, 0o604, 0o664], ids=oct)
def test_replacing_a_file_keeps_its_mode_like_a_plain_open(tmp_path, existing):
    path = tmp_path / "latest.json"
    path.write_text("old")
    os.chmod(path, existing)
    with umask(0o022):
        atomic_write_json(path, {"new": True})
    assert mode(path) == existing
    assert path.read_text() == '{"new": true}'


@posix_only
def test_checkpoints_are_readable_by_the_group_under_a_shared_umask(tmp_path):
    torch = pytest.importorskip("torch")
    from agents.checkpoint import load_checkpoint, save_checkpoint

    with umask(0o002):
        save_checkpoint(tmp_path / "run" / "latest.pt", {"w": {"x": torch.ones(2)}}, {"it": 3})
    assert mode(tmp_path / "run" / "latest.pt") == 0o664  # mkstemp gave 0o600
    tensors, meta = load_checkpoint(tmp_path / "run" / "latest.pt")
    assert meta == {"it": 3} and tensors["w"]["x"].tolist() == [1.0, 1.0]


@posix_only
def test_content_then_directory_are_fsynced_around_the_rename(tmp_path, monkeypatch):
    path = tmp_path / "out.bin"
    synced = []
    real_fsync = os.fsync

    def recording_fsync(fd):
        st = os.fstat(fd)
        synced.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", path.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    atomic_write_bytes(path, b"payload")
    # The temporary file's content before the rename (target not there yet), the folder after it.
    assert synced == [("file", False), ("dir", True)]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]


@posix_only
def test_the_generated_world_is_readable_like_plainly_written_files(small_world):
    """Scan folders were built in mkdtemp (mode 0700): now every folder and file follows the umask."""
    root, _ = small_world
    current = os.umask(0)
    os.umask(current)
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            assert mode(os.path.join(dirpath, d)) == 0o777 & ~current, os.path.join(dirpath, d)
        for f in filenames:
            assert mode(os.path.join(dirpath, f)) == 0o666 & ~current, os.path.join(dirpath, f)
