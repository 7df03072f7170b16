"""The episode record shared by every dataset, and the field checks all loaders use.

An :class:`Episode` is one (path, instruction) pair: R2R files hold several instructions per
path and expand to one episode each; RxR files hold one instruction per line. Loaders build
episodes only through the checks below, so every malformed record fails with a
:class:`~vln.errors.DataFormatError` that names the file, the record and the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..errors import DataFormatError, UnknownScanError


class FrozenDict(dict):
    """A read-only dict that still pickles (``MappingProxyType`` does not), so episodes can be
    sent to vector-env worker processes."""

    def _readonly(self, *args, **kwargs):
        raise TypeError("episode extras are read-only")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _readonly

    def __reduce__(self):
        return FrozenDict, (dict(self),)


@dataclass(frozen=True)
class Episode:
    """One navigation episode: a path in a scan and one instruction describing it.

    Attributes:
        instr_id: unique id of the instruction: ``"<path_id>_<k>"`` for R2R (k-th instruction of
            the path), ``str(instruction_id)`` for RxR.
        path_id: id of the path (int), shared by the instructions of one R2R path.
        scan: Matterport3D scan id.
        path: viewpoint ids from start to goal (a tuple; the R2R test split holds the start only).
        heading: initial heading in radians (0 faces +y, increases turning right, as in R2R).
        instruction: the instruction text ("" for uninstructed augmentation paths).
        distance: length of the path in metres as stored in the file, or ``None`` where the file
            has none (R2R test split, RxR).
        language: ``"en"`` for R2R, the BCP 47 locale (``"en-IN"``, ``"hi-IN"``, ``"te-IN"``,
            ``"en-US"``) for RxR.
        source: the file the episode was read from (for error messages); not compared.
        extras: further fields of the record kept for round trips (RxR ``annotator_id``,
            ``timed_instruction``, ``edit_distance``, ``split``); read-only, not compared.
    """

    instr_id: str
    path_id: int
    scan: str
    path: tuple
    heading: float
    instruction: str
    distance: float | None = None
    language: str = "en"
    source: str | None = field(default=None, compare=False)
    extras: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    def __post_init__(self):
        # Freeze the containers too, so an episode shared between envs cannot be edited.
        object.__setattr__(self, "path", tuple(self.path))
        object.__setattr__(self, "extras", FrozenDict(self.extras))

    @property
    def start(self) -> str:
        """The start viewpoint id."""
        return self.path[0]

    @property
    def goal(self) -> str:
        """The goal viewpoint id (the last of ``path``)."""
        return self.path[-1]


# ------------------------------------------------------------------ field checks
def _type_name(value) -> str:
    return "null" if value is None else type(value).__name__


def get_field(rec: Mapping, key: str, kind: str, file, record, optional: bool = False):
    """Return ``rec[key]`` checked against ``kind``; raise :class:`DataFormatError` otherwise.

    Args:
        rec: the JSON object.
        key: the field name.
        kind: one of ``"str"``, ``"int"``, ``"number"`` (finite int or float, returned as float),
            ``"str_list"`` (list of str), ``"path"`` (non-empty list of str, returned as tuple).
        file, record: where the object came from, for the error message.
        optional: return ``None`` when the field is absent instead of raising.
    """
    if key not in rec:
        if optional:
            return None
        raise DataFormatError(file, record, key, "is missing")
    v = rec[key]
    bad = None
    if kind == "str":
        if not isinstance(v, str):
            bad = "a string"
    elif kind == "int":
        if not isinstance(v, int) or isinstance(v, bool):
            bad = "an integer"
    elif kind == "number":
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            bad = "a finite number"
        else:
            v = float(v)
    elif kind in ("str_list", "path"):
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            bad = "a list of strings"
        elif kind == "path":
            if not v:
                bad = "a non-empty list of viewpoint ids"
            else:
                v = tuple(v)
    else:  # pragma: no cover - programming error
        raise ValueError(f"unknown field kind {kind!r}")
    if bad is not None:
        shown = repr(v) if len(repr(v)) < 60 else repr(v)[:57] + "..."
        raise DataFormatError(file, record, key, f"must be {bad}, got {_type_name(v)} {shown}")
    return v


def require_object(rec, file, record) -> Mapping:
    """Raise unless ``rec`` is a JSON object (dict)."""
    if not isinstance(rec, dict):
        raise DataFormatError(file, record, None, f"must be a JSON object, got {_type_name(rec)}")
    return rec


def check_path_in_graph(graph, file, record, scan: str, path) -> None:
    """Check a path against the navigation graph.

    Args:
        graph: a :class:`vln.graph.NavGraph`.
        file, record: where the path came from, for the error message.
        scan: the scan id.
        path: viewpoint ids.

    Raises:
        DataFormatError: the scan has no graph, or a viewpoint is unknown or excluded.
        NotConnectedError: two consecutive viewpoints are not joined by an edge.
    """
    try:
        g = graph[scan]  # cached after the first record of a scan; ``in`` would stat the file each time
    except UnknownScanError:
        raise DataFormatError(file, record, "scan", f"scan {scan!r} has no connectivity graph in {graph.directory}") from None
    for k, vp in enumerate(path):
        ix = g.index.get(vp)
        if ix is None:
            raise DataFormatError(
                file, record, "path", f"viewpoint {vp!r} (step {k}) is not in the connectivity graph of scan {scan}"
            )
        if not g.included[ix]:
            raise DataFormatError(
                file, record, "path", f"viewpoint {vp!r} (step {k}) is excluded from the connectivity graph of scan {scan}"
            )
    where = f"{file}, record {record}, field 'path'"
    g.check_path(list(path), where=where)  # raises NotConnectedError naming file and record
