"""Atomic file writes: a crash never leaves a half-written checkpoint, cache or export."""
from __future__ import annotations

import gzip
import json
import os
import secrets
import shutil
import stat
from contextlib import contextmanager
from pathlib import Path


def fsync_directory(path: str | os.PathLike) -> None:
    """fsync a directory, so that a rename or creation inside it survives a crash (POSIX only)."""
    if os.name != "posix":
        return  # Windows cannot open a directory for fsync; NTFS journals the rename itself
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; on success it replaces ``path`` atomically.

    The temporary file lives in the same directory so that ``os.replace`` is a rename on one
    file system. It is created with the permissions a plain ``open(path, "w")`` would give:
    ``0o666 & ~umask`` for a new file, the existing file's mode when ``path`` is replaced. Its
    content is fsync'ed before the rename and the directory after it. On an exception the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:  # the kernel applies the umask to 0o666, as for any new file
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
            break
        except FileExistsError:
            continue
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY if os.name == "posix" else os.O_RDWR)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if mode is not None:  # a plain open(path, "w") of an existing file keeps its mode
            os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


@contextmanager
def atomic_dir(path: str | os.PathLike):
    """Yield a temporary folder beside ``path``; on success it replaces ``path`` (a folder) whole.

    Readers see either the old folder or the complete new one (the swap is one rename after the
    old folder is removed); on an exception the temporary folder is removed and ``path`` untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkdir applies the umask (mkdtemp would leave the published folder at mode 0700).
    tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
    tmp.mkdir()
    try:
        yield tmp
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
        fsync_directory(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`: mode, fsync, rename)."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj, **kwargs) -> None:
    """Serialise ``obj`` as JSON and write it to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, **kwargs))


def open_text(path: str | os.PathLike, mode: str = "r"):
    """Open a UTF-8 text file for reading or writing, gzip-compressed when its name ends in ``.gz``."""
    path = Path(path)
    if path.name.endswith(".gz"):
        return gzip.open(path, mode + "t", encoding="utf-8")
    return open(path, mode, encoding="utf-8")


def read_json(path: str | os.PathLike, error=None):
    """Decode a JSON file; malformed JSON raises ``error`` (default DataFormatError) naming the file."""
    from .errors import DataFormatError

    try:
        with open_text(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise (error or DataFormatError)(
            path, None, None, f"is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None


def iter_jsonl(path: str | os.PathLike, error=None):
    """Yield ``(line number, object)`` of a JSON Lines file (``.gz`` too), skipping blank lines.

    A malformed line raises ``error`` (default DataFormatError) naming the file and the line.
    """
    from .errors import DataFormatError

    with open_text(path) as f:
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                yield n, json.loads(line)
            except json.JSONDecodeError as e:
                raise (error or DataFormatError)(
                    path, f"line {n}", None, f"is not valid JSON ({e.msg}, column {e.colno})") from None
