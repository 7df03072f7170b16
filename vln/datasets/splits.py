"""Split files as a whole: load one by its name, and find which split a set of instr_ids is from.

Pairing trajectories with the wrong split is a common slip (``submit_val_seen.json`` with
``R2R_val_unseen.json``). Path ids are unique across the splits of R2R, RxR and the synthetic
world, so the split beside the given one that holds the ids names the file the user meant.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Iterable

from ..errors import DataFormatError

logger = logging.getLogger(__name__)

#: File-name endings of RxR split files (everything else is read as R2R JSON).
RXR_SUFFIXES = (".jsonl", ".jsonl.gz")


def load_split_file(path: str | os.PathLike, graphs=None) -> list:
    """A split's episodes: R2R ``.json`` or RxR ``.jsonl`` / ``.jsonl.gz`` (``graphs`` validates paths)."""
    path = Path(path)
    if path.name.endswith(RXR_SUFFIXES):
        from .rxr import load_rxr

        return load_rxr(path, graph=graphs)
    from .r2r import load_r2r

    return load_r2r(path, graph=graphs)


def _siblings(split_file: Path) -> list[Path]:
    rxr = split_file.name.endswith(RXR_SUFFIXES)
    same_kind = [f for f in sorted(split_file.parent.iterdir()) if f.is_file() and f != split_file
                 and (f.name.endswith(RXR_SUFFIXES) if rxr else f.suffix == ".json")]
    return same_kind


def split_holding(instr_ids: Iterable[str], split_file: str | os.PathLike) -> tuple[Path, int] | None:
    """The split file beside ``split_file`` holding the most of ``instr_ids``.

    Returns:
        ``(file, how many of the ids it holds)``, or ``None`` when no sibling holds any (files
        that are not split files are passed over).
    """
    ids = set(map(str, instr_ids))
    best = None
    split_file = Path(split_file)
    for f in _siblings(split_file) if split_file.parent.is_dir() else []:
        try:
            held = len(ids & {str(e.instr_id) for e in load_split_file(f)})
        except (DataFormatError, OSError, ValueError) as e:  # another kind of JSON file
            logger.debug("%s is not a split file: %s", f, e)
            continue
        if held and (best is None or held > best[1]):
            best = (f, held)
    return best


def not_in_split_message(unknown: list[str], split_file: str | os.PathLike, n_total: int) -> str:
    """The problem text for trajectories whose instr_ids ``unknown`` are not in ``split_file``:
    it names the split they come from when a file beside ``split_file`` holds them."""
    msg = (f"is not in the split {split_file} ({len(unknown)} of the {n_total} instr_ids are not: "
           f"{', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''})")
    found = split_holding(unknown, split_file)
    if found is not None:
        f, held = found
        share = "all" if held == len(unknown) else f"{held} of the {len(unknown)}"
        msg += f"; {share} are instr_ids of {f}: the trajectories belong to that split, pass it instead"
    return msg
