"""One lock per shared on-disk build (the default world, a feature store): runs side by side wait.

Several runs started together (seeds, ablations) may all find the same world or feature store
missing. :func:`build_lock` makes the first one build it while the others wait and then use the
finished result. The lock is an OS file lock (``fcntl.flock`` on POSIX, through the
``filelock`` package), so the operating system releases it when its holder dies: a run killed
mid-build leaves no stale lock behind. What it leaves is a half-built result, which each builder
recognises and rebuilds (a world without ``world.json``; a ``.feats.partial`` whose rows do not
match its index) instead of trusting it.

Usage::

    with build_lock(target, "the synthetic world") as waited:
        if not done(target):      # check again: another process may have built it meanwhile
            build(target)
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

logger = logging.getLogger(__name__)


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of ``target``: ``.<name>.lock`` beside it (``target`` itself may not exist yet)."""
    target = Path(target).absolute()
    return target.parent / f".{target.name}.lock"


@contextmanager
def build_lock(target: str | os.PathLike, what: str):
    """Hold the build lock of ``target`` for the ``with`` block, waiting (and saying so) if taken.

    Args:
        target: the file or folder being built (its parent folder is created).
        what: what is being built, for the waiting message ("the feature store X").

    Yields:
        True when another process held the lock first (it has probably built ``target``: check
        again before building), else False.
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    waited = False
    try:
        lock.acquire(timeout=0)
    except Timeout:
        waited = True
        logger.warning("waiting for %s: another process is building it (lock %s)", what, path)
        t0 = time.perf_counter()
        lock.acquire()
        logger.warning("%s: the other process finished after %.1f s", what, time.perf_counter() - t0)
    try:
        yield waited
    finally:
        lock.release()
