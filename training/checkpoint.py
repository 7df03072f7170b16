"""Checkpoints: tensors through ``torch.save``, everything else as JSON, written atomically.

A checkpoint file holds ``{"format": <tag>, "tensors": {group: state_dict or tensor}, "meta":
<JSON text>}``. Loading uses ``torch.load(weights_only=True)``, so a checkpoint can never run code:
only tensors, numbers, strings and containers are accepted. Each trainer family tags its files
(``fmt``) so that one family's checkpoint is never read as another's.

A file that cannot be read is reported in one line naming it and what is wrong with it (empty,
cut off, not a checkpoint, holding Python objects, a TorchScript model) as a
:class:`vln.errors.DataFormatError`, never with torch's advice to turn ``weights_only`` off.

Random states (:func:`rng_state`) are tensors too: torch CPU (and CUDA) generators, NumPy's and
Python's global generators, so that a resumed run draws the numbers an uninterrupted one would.
"""
from __future__ import annotations

import json
import logging
import os
import random
import re
import zipfile
from pathlib import Path

import numpy as np
import torch

from vln.errors import DataFormatError
from vln.io_utils import atomic_path

logger = logging.getLogger(__name__)

#: The default format tag; trainer families pass their own (``"clipvil-agent-checkpoint-v1"``).
FORMAT = "clipvil-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, tensors: dict, meta: dict, fmt: str = FORMAT) -> Path:
    """Write ``tensors`` (name -> state_dict or tensor) and JSON-serialisable ``meta`` atomically.

    The file is fsync'ed before it replaces ``path`` (:func:`vln.io_utils.atomic_path`): a crash
    leaves the previous file or the new one, never a partial one.
    """
    path = Path(path)
    payload = {"format": fmt, "tensors": tensors, "meta": json.dumps(meta)}
    with atomic_path(path) as tmp:  # fsync'ed, renamed, mode as a plain write would give
        torch.save(payload, tmp)
    logger.debug("saved checkpoint %s", path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu", fmt: str = FORMAT) -> tuple[dict, dict]:
    """Read a checkpoint written by :func:`save_checkpoint` with the tag ``fmt``; returns (tensors, meta).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: the file is empty, cut off, not a checkpoint, holds anything but weights,
            or has another format tag (one line naming the file and the problem).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}" + (" (it is a directory)" if path.is_dir() else ""))
    unreadable = _unreadable(path)
    if unreadable:
        raise DataFormatError(path, None, None, unreadable)
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - every failure is explained in our words below
        raise DataFormatError(path, None, None, _load_failure(path, e)) from None
    if not isinstance(payload, dict) or payload.get("format") != fmt:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        if isinstance(payload, dict) and got is None:
            raise DataFormatError(path, None, None, f"is a torch file without a 'format' tag (keys "
                                  f"{sorted(map(str, payload))[:5]}), not a checkpoint written by this toolkit")
        raise DataFormatError(path, None, "format", f"is {got!r}, expected {fmt!r}")
    try:
        meta = json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataFormatError(path, None, "meta", f"is not valid JSON: {e}") from None
    if "tensors" not in payload:
        raise DataFormatError(path, None, "tensors", "is missing")
    return payload["tensors"], meta


def _unreadable(path: Path) -> str | None:
    """What is wrong with a file that torch cannot even open as an archive, or None."""
    size = path.stat().st_size
    if size == 0:
        return "is empty (0 bytes): the write or copy that made it was interrupted; delete it or copy it again"
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04":
        if not zipfile.is_zipfile(path):
            return (f"is cut off ({size:,} bytes, the archive's end is missing): the write or copy that made it "
                    "was interrupted; delete it or copy it again")
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
                damaged = z.testzip()  # torch does not check the CRCs: damaged weights would load
        except (zipfile.BadZipFile, UnicodeDecodeError, ValueError, OSError, EOFError) as e:
            return f"is corrupt (its archive index is damaged: {e})"
        if damaged is not None:
            return f"is corrupt: the record {damaged!r} fails its checksum (the file was damaged after it was written)"
        if any(n.endswith("/constants.pkl") or "/code/" in n for n in names):
            return "is a TorchScript model archive, not a training checkpoint"
        if not any(n.endswith("/data.pkl") for n in names):
            return "is a zip archive but not a torch file (no data.pkl inside)"
        return None
    if head[:1] == b"\x80":  # a pickle (torch's legacy format, or a plain pickle)
        return None
    try:
        text = open(path, encoding="utf-8").read(200)
    except UnicodeDecodeError:
        return f"is not a checkpoint (unknown binary content starting with {head!r})"
    return f"is not a checkpoint but a text file (starting {text[:40]!r})"


def _load_failure(path: Path, e: Exception) -> str:
    """Our words for an exception of ``torch.load(weights_only=True)``."""
    msg = str(e)
    found = re.search(r"GLOBAL ([\w.]+)", msg)
    if found or "Weights only load failed" in msg:
        what = f" ({found.group(1)})" if found else ""
        return (f"holds Python objects{what} besides tensors and numbers: refused, a checkpoint of this "
                "toolkit holds weights only (it was not written by this toolkit, or was altered)")
    if isinstance(e, (EOFError, zipfile.BadZipFile)) or "failed finding central directory" in msg or "EOF" in msg:
        return "is cut off or corrupt (the archive ends early): delete it or copy it again"
    first = msg.strip().splitlines()[0] if msg.strip() else type(e).__name__
    return f"is corrupt (its records cannot be decoded: {first})"


# ---------------------------------------------------------------------- random states
def rng_state(device: torch.device | str | None = None) -> dict:
    """The global random states as tensors, for a checkpoint's ``tensors``.

    Keys: ``torch_cpu`` (uint8), ``torch_cuda`` (uint8; only when ``device`` is CUDA),
    ``numpy_keys`` (int64, 624 words of MT19937) with ``numpy_pos`` / ``numpy_gauss``, and
    ``python`` (int64, 625 words) with ``python_gauss`` (float64, empty when none is cached).
    """
    out = {"torch_cpu": torch.get_rng_state()}
    if device is not None and torch.device(device).type == "cuda":
        out["torch_cuda"] = torch.cuda.get_rng_state(torch.device(device))
    _, keys, pos, has_gauss, gauss = np.random.get_state()
    out["numpy_keys"] = torch.from_numpy(keys.astype(np.int64))
    out["numpy_pos"] = torch.tensor(pos, dtype=torch.int64)
    out["numpy_gauss"] = torch.tensor([gauss] if has_gauss else [], dtype=torch.float64)
    version, words, py_gauss = random.getstate()
    out["python"] = torch.tensor([version, *words], dtype=torch.int64)
    out["python_gauss"] = torch.tensor([] if py_gauss is None else [py_gauss], dtype=torch.float64)
    return out


def restore_rng_state(state: dict, device: torch.device | str | None = None) -> None:
    """Set the global random states saved by :func:`rng_state` (keys it lacks are left alone)."""
    torch.set_rng_state(state["torch_cpu"].cpu())
    if "torch_cuda" in state and device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(state["torch_cuda"].cpu(), torch.device(device))
    if "numpy_keys" in state:
        gauss = state["numpy_gauss"].tolist()
        np.random.set_state(("MT19937", np.asarray(state["numpy_keys"].tolist(), dtype=np.uint32),
                             int(state["numpy_pos"]), int(bool(gauss)), gauss[0] if gauss else 0.0))
    if "python" in state:
        words = state["python"].tolist()
        gauss = state["python_gauss"].tolist()
        random.setstate((words[0], tuple(words[1:]), gauss[0] if gauss else None))
