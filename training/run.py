"""The run folder of a training run, and when to write its ``latest.pt``.

A run folder holds::

    params.json         the settings (training.config.write_params), rewritten at each start
    latest.pt           the whole state (weights, optimiser, random states, data position):
                        written every N iterations or M minutes, whichever comes first, and at
                        every validation; a run restarted on the same folder resumes from it
    best_<name>.pt      the best checkpoint by the trainer's key metric on ``<name>``
    tb/                 TensorBoard event files (training.logging.TrainLog)

Whether a run is fresh or resumed is decided by ``latest.pt`` alone: it is written atomically,
so it is either a complete state or absent.

Under torchrun every process opens the same folder; only the one built with ``writer=True``
(rank 0) writes anything, the others read (every rank resumes from the same ``latest.pt``).
"""
from __future__ import annotations

import logging
import os
import time
from pathlib import Path

from .checkpoint import FORMAT, load_checkpoint, save_checkpoint
from .config import ConfigMismatchError, read_params, resume_config, write_params

logger = logging.getLogger(__name__)


def run_name(*parts) -> str:
    """``"<part>__<part>__...__<YYYYmmdd-HHMMSS>"``, e.g. ``run_name("vqa", "clip_r50", 0)``."""
    return "__".join([*(str(p) for p in parts), time.strftime("%Y%m%d-%H%M%S")])


class RunDir:
    """One run folder (see the module docstring); nothing is created until something is written.

    Args:
        path: the folder.
        fmt: the checkpoint format tag of this trainer family (training.checkpoint.FORMAT).
        writer: this process writes (``params.json``, checkpoints); False on ranks other than 0,
            whose writes are skipped (the methods return None).
    """

    def __init__(self, path: str | os.PathLike, fmt: str = FORMAT, writer: bool = True):
        self.path = Path(path)
        self.fmt = fmt
        self.writer = writer

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    @property
    def params_path(self) -> Path:
        return self.path / "params.json"

    @property
    def latest_path(self) -> Path:
        return self.path / "latest.pt"

    @property
    def tb_dir(self) -> Path:
        return self.path / "tb"

    def best_path(self, name: str) -> Path:
        """``best_<name>.pt`` (``name``: a validation split, say)."""
        return self.path / f"best_{name}.pt"

    @property
    def resuming(self) -> bool:
        """True when the folder holds a ``latest.pt`` to continue from."""
        return self.latest_path.is_file()

    # ------------------------------------------------------------------ settings
    def resolve_config(self, cfg, given: set[str] | None = None):
        """The settings to run with: ``cfg`` for a fresh run; for a resumed one the saved
        ``params.json`` with the given settings that may change applied.

        Raises:
            ConfigMismatchError: a given setting differs from the saved one (all named in one line).
        """
        if not self.resuming or not self.params_path.is_file():
            return cfg
        return resume_config(read_params(self.params_path, type(cfg)), cfg, given, run=self.path)

    def check_iterations(self, done: int, target: int, flag: str = "--iters") -> None:
        """Refuse a target below the iterations a resumed run has already done."""
        if target < done:
            raise ConfigMismatchError(f"{self.path} is at iteration {done} already, beyond {flag} {target}: "
                                      f"give {flag} {done} or more to resume it (more trains longer)")

    def write_params(self, cfg) -> Path | None:
        if not self.writer:
            return None
        self.path.mkdir(parents=True, exist_ok=True)
        return write_params(self.params_path, cfg)

    # ------------------------------------------------------------------ checkpoints
    def save(self, path: Path, tensors: dict, meta: dict) -> Path | None:
        if not self.writer:
            return None
        return save_checkpoint(path, tensors, meta, fmt=self.fmt)

    def save_latest(self, tensors: dict, meta: dict) -> Path | None:
        return self.save(self.latest_path, tensors, meta)

    def save_best(self, name: str, tensors: dict, meta: dict) -> Path | None:
        return self.save(self.best_path(name), tensors, meta)

    def load_latest(self, map_location="cpu") -> tuple[dict, dict]:
        """(tensors, meta) of ``latest.pt``."""
        return load_checkpoint(self.latest_path, map_location, fmt=self.fmt)


class LatestPolicy:
    """When to write ``latest.pt``: every ``every_iters`` iterations or every ``every_minutes``
    minutes since the last write, whichever comes first (0 turns either off).

    Call :meth:`due` after each iteration and :meth:`saved` after each write (validations write
    it too). ``clock`` returns seconds (``time.monotonic``; tests pass their own).
    """

    def __init__(self, every_iters: int, every_minutes: float, clock=time.monotonic):
        if every_iters < 0 or every_minutes < 0:
            raise ValueError("latest.pt intervals must be >= 0")
        self.every_iters, self.every_s, self.clock = int(every_iters), 60.0 * every_minutes, clock
        self.last_iter: int | None = None
        self.last_time = clock()

    def due(self, iteration: int) -> bool:
        """True when ``latest.pt`` should be written after ``iteration`` (not written there yet)."""
        if iteration == self.last_iter:
            return False
        if self.every_iters and iteration % self.every_iters == 0:
            return True
        return bool(self.every_s) and self.clock() - self.last_time >= self.every_s

    def saved(self, iteration: int) -> None:
        self.last_iter, self.last_time = iteration, self.clock()
