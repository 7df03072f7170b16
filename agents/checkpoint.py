"""Checkpoints: tensors through ``torch.save`` and everything else as JSON, written atomically.

A checkpoint file holds ``{"format": ..., "tensors": {group: state_dict}, "meta": <JSON text>}``.
Loading uses ``torch.load(weights_only=True)``, so a checkpoint can never run code: only tensors,
numbers, strings and containers are accepted. Random states travel in ``meta`` (NumPy bit
generator state) and as uint8 tensors (torch CPU/CUDA generator states).
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch

from vln.errors import DataFormatError
from vln.io_utils import atomic_path

logger = logging.getLogger(__name__)

FORMAT = "clipvil-agent-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, tensors: dict, meta: dict) -> Path:
    """Write ``tensors`` (name -> state_dict or tensor) and JSON-serialisable ``meta`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "tensors": tensors, "meta": json.dumps(meta)}
    with atomic_path(path) as tmp:  # fsync'ed, renamed, mode as a plain write would give
        torch.save(payload, tmp)
    logger.debug("saved checkpoint %s", path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[dict, dict]:
    """Read a checkpoint safely; returns (tensors, meta).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not a checkpoint of this toolkit, or one holding anything but weights.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # a pickle with objects, or a truncated file
        raise DataFormatError(path, None, None, f"cannot be loaded safely as a checkpoint: {e}") from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        got = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise DataFormatError(path, None, "format", f"is {got!r}, expected {FORMAT!r}")
    try:
        meta = json.loads(payload["meta"])
    except (KeyError, TypeError, ValueError) as e:
        raise DataFormatError(path, None, "meta", f"is not valid JSON: {e}") from e
    return payload["tensors"], meta


def rng_tensors(device: torch.device | None = None) -> dict:
    """The torch random states (CPU, and the CUDA device's when ``device`` is CUDA)."""
    out = {"torch_cpu": torch.get_rng_state()}
    if device is not None and torch.device(device).type == "cuda":
        out["torch_cuda"] = torch.cuda.get_rng_state(torch.device(device))
    return out


def restore_rng(tensors: dict, device: torch.device | None = None) -> None:
    torch.set_rng_state(tensors["torch_cpu"].cpu())
    if "torch_cuda" in tensors and device is not None and torch.device(device).type == "cuda":
        torch.cuda.set_rng_state(tensors["torch_cuda"].cpu(), torch.device(device))


def require_trained_follower(path, tensors: dict, meta: dict) -> None:
    """Raise ValueError unless the checkpoint at ``path`` holds a trained follower.

    A ``--mode speaker`` run saves the untouched follower of its trainer too; it is refused.
    """
    if "follower" not in tensors or "follower_config" not in meta or meta.get("config", {}).get("mode") == "speaker":
        raise ValueError(f"checkpoint {path} holds no trained follower: it is from a --mode speaker run "
                         "(use a --mode follower or --mode bt checkpoint)")
