"""Evaluate agent trajectories on a split: per-episode metrics and their means.

The :class:`Evaluator` reproduces the official R2R evaluation (Matterport3DSimulator
``tasks/R2R/eval.py``) plus SPL as EnvDrop computes it and nDTW / sDTW / CLS as the
google-research ``r4r`` code does (see :mod:`vln.metrics` for each definition). Differences from
the official code, all deliberate:

* any number of instructions per path (the official code expects ids ``<path_id>_0..2`` and so
  cannot score the 14 four-instruction training paths); the split's own ``instr_id`` list is
  the contract;
* unknown or duplicated instr_ids and disconnected jumps are errors (the official code skips the
  former and silently adds a shortest-path distance for the latter);
* ``allow_partial=True`` scores a subset of the split.

Aggregates are plain means in submission order, as the official ``np.average`` calls.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from .errors import DataFormatError
from .graph import NavGraph
from .metrics import DTW_THRESHOLD, SUCCESS_DISTANCE, batch_metrics, trajectory_indices
from .submission import MEMORY, read_submission, validate_submission

logger = logging.getLogger(__name__)


def load_reference_episodes(path: str | os.PathLike, graphs: NavGraph | None = None) -> list:
    """Load a split's episodes: R2R ``.json`` or RxR ``.jsonl`` / ``.jsonl.gz``.

    Uses the dataset readers of :mod:`vln.datasets` (``graphs`` validates every path there).
    """
    from .datasets.splits import load_split_file

    return load_split_file(path, graphs)


@dataclass
class EvaluationResult:
    """What :meth:`Evaluator.score` returns.

    Attributes:
        summary: the aggregate (see :func:`summarize`).
        episodes: one record per scored instruction, in submission order: ``instr_id``, ``scan``
            and the metrics of :func:`vln.metrics.metrics_from_indices`.
    """

    summary: dict
    episodes: list = field(default_factory=list)


def summarize(records: list, num_split: int | None = None) -> dict:
    """Means of per-episode records, under our names and the official R2R / EnvDrop names.

    Args:
        records: dicts with the keys of :data:`vln.metrics.EPISODE_KEYS`.
        num_split: how many episodes the split holds (reported; defaults to ``len(records)``).

    Returns:
        dict with ``num_episodes``, ``num_split_episodes``; ours: ``sr``, ``osr``, ``spl``,
        ``ndtw``, ``sdtw``, ``cls``, ``nav_error``, ``oracle_error``, ``length``, ``steps``; the
        official keys ``success_rate``, ``oracle_rate`` (alias ``oracle_success_rate``) and
        ``lengths``. Rates are fractions in [0, 1]; errors and lengths in metres.
    """
    if not records:
        raise ValueError("no episodes to summarise")

    def mean(key):
        return float(np.average(np.array([r[key] for r in records], dtype=np.float64)))

    n = len(records)
    sr = sum(bool(r["success"]) for r in records) / n
    osr = sum(bool(r["oracle_success"]) for r in records) / n
    length = mean("trajectory_length")
    return {
        "num_episodes": n,
        "num_split_episodes": n if num_split is None else num_split,
        "sr": sr,
        "osr": osr,
        "spl": mean("spl"),
        "ndtw": mean("ndtw"),
        "sdtw": mean("sdtw"),
        "cls": mean("cls"),
        "nav_error": mean("nav_error"),
        "oracle_error": mean("oracle_error"),
        "length": length,
        "steps": mean("steps"),
        "success_rate": sr,
        "oracle_rate": osr,
        "oracle_success_rate": osr,
        "lengths": length,
    }


def _get(ep, name):
    return ep[name] if isinstance(ep, dict) or (not hasattr(ep, name) and isinstance(ep, Mapping)) else getattr(ep, name)


class Evaluator:
    """Scores submissions against the reference paths of one split.

    Args:
        graphs: the :class:`~vln.graph.NavGraph` holding the split's scans.
        episodes: the split's episodes (:class:`vln.datasets.episode.Episode` or mappings with
            ``instr_id``, ``scan`` and ``path``); one per instruction.
        success_distance: success radius in metres (strict ``<``), 3.0 for R2R and RxR.
        threshold: nDTW / sDTW / CLS threshold in metres.
        source: the split file the episodes came from, named in errors (``from_files`` sets it).

    Raises:
        DataFormatError: a duplicated instr_id, or a reference path holding only its start
            viewpoint (a test split has no goal to score against).
        UnknownScanError, UnknownViewpointError, ...: a reference path that does not fit the graph.
    """

    def __init__(self, graphs: NavGraph, episodes: Iterable, success_distance: float = SUCCESS_DISTANCE,
                 threshold: float = DTW_THRESHOLD, source: str | os.PathLike = "<episodes>"):
        self.graphs = graphs
        self.success_distance = success_distance
        self.threshold = threshold
        self.episodes = list(episodes)
        self.source = source
        self._reference: dict[str, tuple[str, np.ndarray]] = {}
        for ep in self.episodes:
            iid, scan, path = str(_get(ep, "instr_id")), _get(ep, "scan"), _get(ep, "path")
            if iid in self._reference:
                raise DataFormatError(source, f"instr_id {iid}", "instr_id", f"the split holds instr_id {iid} twice")
            if len(path) < 2:
                raise DataFormatError(
                    source, f"instr_id {iid}", "path",
                    "the reference path holds only the start viewpoint (a test split?), so there is no goal "
                    "to score against; check a submission's format with scripts/evaluate.py --validate-only "
                    "(vln.submission_check.check_submission_file) instead")
            ref = trajectory_indices(graphs[scan], path, f"instr_id {iid} (reference path)")
            self._reference[iid] = (scan, ref)

    @classmethod
    def from_files(cls, data: str | os.PathLike, connectivity: str | os.PathLike | NavGraph, **kwargs) -> "Evaluator":
        """An evaluator for a split file (R2R ``.json``, RxR ``.jsonl[.gz]``) and a connectivity dir."""
        graphs = connectivity if isinstance(connectivity, NavGraph) else NavGraph(connectivity)
        return cls(graphs, load_reference_episodes(data, graphs), source=data, **kwargs)

    @property
    def instr_ids(self) -> list[str]:
        """The split's instr_ids in split order."""
        return list(self._reference)

    def __len__(self) -> int:
        return len(self._reference)

    def score(self, submission, allow_partial: bool = False, source: str = MEMORY) -> EvaluationResult:
        """Score trajectories.

        Args:
            submission: ``{instr_id: trajectory}`` (entries: viewpoint ids or ``[viewpoint,
                heading, elevation]``) or a list of R2R submission objects.
            allow_partial: accept a submission covering only part of the split.
            source: where the submission came from, for error messages.

        Returns:
            the per-episode records and their summary.

        Raises:
            vln.submission.SubmissionError: see :func:`vln.submission.validate_submission`.
        """
        split_file = self.source if isinstance(self.source, (str, os.PathLike)) and Path(self.source).is_file() else None
        indices = validate_submission(submission, self.episodes, self.graphs, allow_partial, source, split_file)
        scans: dict[str, int] = {}
        scan_of = [scans.setdefault(self._reference[iid][0], len(scans)) for iid in indices]
        metrics = batch_metrics([self.graphs[s].distances for s in scans], scan_of, list(indices.values()),
                                [self._reference[iid][1] for iid in indices], self.success_distance, self.threshold)
        records = [{"instr_id": iid, "scan": self._reference[iid][0], **m} for iid, m in zip(indices, metrics)]
        summary = summarize(records, len(self))
        logger.info("scored %d of %d episodes: SR %.4f SPL %.4f nDTW %.4f", len(records), len(self),
                    summary["sr"], summary["spl"], summary["ndtw"])
        return EvaluationResult(summary, records)

    def score_file(self, path: str | os.PathLike, fmt: str = "auto", allow_partial: bool = False) -> EvaluationResult:
        """Read a submission file (see :func:`vln.submission.read_submission`) and score it."""
        return self.score(read_submission(path, fmt), allow_partial, str(path))
