"""Navigation graphs: neighbours, positions, shortest paths and distances per scan.

Two precisions live side by side, as in the reference code:

* ``positions_f32`` - the pose translation parsed as float32, as the C++ MatterSim reads it; the
  simulator and the panoramic candidates use these.
* ``positions`` - the same numbers in double precision, as the official R2R evaluation (Python
  floats) reads them; distances for metrics and the teacher use these.

Shortest paths use SciPy's Dijkstra on the weighted graph (nodes: included viewpoints; edges:
``unobstructed`` pairs of included viewpoints; weight: 3D Euclidean distance). ``distances[a, b]``
is the length found by Dijkstra from source ``a``, like ``nx.all_pairs_dijkstra_path_length``.
"""
from __future__ import annotations

import os
import threading
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from .connectivity import ScanRecords, connectivity_path, read_connectivity, read_scans_txt
from .errors import ExcludedViewpointError, NotConnectedError, UnknownScanError, UnknownViewpointError


class ScanGraph:
    """The navigation graph of one scan.

    Attributes:
        scan_id: the scan id.
        viewpoint_ids: all N viewpoint ids in file order (excluded ones too).
        index: viewpoint id -> index.
        included: (N,) bool.
        positions: (N, 3) float64 metres (x, y, z), for metrics.
        positions_f32: (N, 3) float32 metres, for the simulator.
        adjacency: (N, N) bool, navigable edges between distinct included viewpoints.
    """

    def __init__(self, records: ScanRecords):
        self.records = records
        self.scan_id = records.scan_id
        self.path = records.path
        self.viewpoint_ids = records.viewpoint_ids
        self.index = records.index
        self.included = records.included
        self.positions = records.poses[:, [3, 7, 11]].copy()
        self.positions_f32 = records.poses.astype(np.float32)[:, [3, 7, 11]].copy()
        adj = records.unobstructed & self.included[:, None] & self.included[None, :]
        np.fill_diagonal(adj, False)
        self.adjacency = adj
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.viewpoint_ids)

    def __repr__(self) -> str:
        return f"ScanGraph({self.scan_id!r}, {len(self)} viewpoints, {int(self.included.sum())} included)"

    # ----------------------------------------------------------------- lookups
    def vp_index(self, viewpoint_id: str, allow_excluded: bool = False) -> int:
        """Index of ``viewpoint_id``; raises for unknown (and, by default, excluded) viewpoints."""
        try:
            ix = self.index[viewpoint_id]
        except KeyError:
            raise UnknownViewpointError(
                f"viewpoint {viewpoint_id!r} is not in the connectivity graph of scan {self.scan_id!r} ({self.path})"
            ) from None
        if not allow_excluded and not self.included[ix]:
            raise ExcludedViewpointError(
                f"viewpoint {viewpoint_id!r} of scan {self.scan_id!r} is excluded from the connectivity graph"
            )
        return ix

    def neighbour_indices(self, ix: int) -> np.ndarray:
        """Indices of the navigable neighbours of viewpoint ``ix``, in index order (int64)."""
        return np.flatnonzero(self.adjacency[ix])

    def neighbours(self, viewpoint_id: str) -> list[str]:
        """Navigable neighbour ids of ``viewpoint_id`` in index order (as MatterSim lists them)."""
        return [self.viewpoint_ids[j] for j in self.neighbour_indices(self.vp_index(viewpoint_id))]

    def has_edge(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` are distinct included viewpoints joined by an edge."""
        ia, ib = self.index.get(a), self.index.get(b)
        return ia is not None and ib is not None and bool(self.adjacency[ia, ib])

    def position(self, viewpoint_id: str) -> np.ndarray:
        """(3,) float64 position of ``viewpoint_id`` in metres."""
        return self.positions[self.vp_index(viewpoint_id, allow_excluded=True)]

    # ---------------------------------------------------------- shortest paths
    @cached_property
    def edge_lengths(self) -> csr_matrix:
        """Sparse (N, N) matrix of edge lengths in metres (float64, Python-float arithmetic)."""
        i, j = np.nonzero(self.adjacency)
        d = self.positions[i] - self.positions[j]
        w = np.sqrt(d[:, 0] ** 2 + d[:, 1] ** 2 + d[:, 2] ** 2)
        return csr_matrix((w, (i, j)), shape=(len(self), len(self)))

    def _all_pairs(self):
        with self._lock:
            if "_dist" not in self.__dict__:
                dist, pred = dijkstra(self.edge_lengths, directed=True, return_predecessors=True)
                self._dist, self._pred = dist, pred
        return self._dist, self._pred

    @property
    def distances(self) -> np.ndarray:
        """(N, N) float64 shortest-path distances in metres (inf where unreachable), cached."""
        return self._all_pairs()[0]

    @property
    def predecessors(self) -> np.ndarray:
        """(N, N) int32 Dijkstra predecessor matrix (row = source), -9999 where none."""
        return self._all_pairs()[1]

    def distance(self, a: str, b: str) -> float:
        """Shortest-path distance in metres from viewpoint ``a`` to ``b`` (inf if unreachable)."""
        return float(self.distances[self.vp_index(a), self.vp_index(b)])

    def shortest_path_indices(self, ia: int, ib: int) -> list[int]:
        """Viewpoint indices of a shortest path from ``ia`` to ``ib``, both ends included."""
        pred = self.predecessors
        if ia == ib:
            return [ia]
        if pred[ia, ib] < 0:
            raise NotConnectedError(
                f"scan {self.scan_id}: no path from {self.viewpoint_ids[ia]} to {self.viewpoint_ids[ib]}"
            )
        out = [ib]
        while out[-1] != ia:
            out.append(int(pred[ia, out[-1]]))
        return out[::-1]

    def shortest_path(self, a: str, b: str) -> list[str]:
        """Viewpoint ids of a shortest path from ``a`` to ``b``, both ends included."""
        idx = self.shortest_path_indices(self.vp_index(a), self.vp_index(b))
        return [self.viewpoint_ids[i] for i in idx]

    def next_step_indices(self, goal: int) -> np.ndarray:
        """(N,) int: for every viewpoint, the next viewpoint on a shortest path to ``goal``.

        The goal maps to itself; unreachable viewpoints map to -1. Used as the teacher action.
        """
        pred = self.predecessors[goal]  # shortest-path tree rooted at the goal (symmetric graph)
        nxt = pred.astype(np.int64)
        nxt[nxt < 0] = -1
        nxt[goal] = goal
        return nxt

    def check_path(self, path: list[str], where: str = "path") -> None:
        """Raise :class:`NotConnectedError` unless consecutive viewpoints are joined by edges."""
        for k in range(len(path) - 1):
            a, b = path[k], path[k + 1]
            if a != b and not self.has_edge(a, b):
                raise NotConnectedError(
                    f"{where}: viewpoints {a} and {b} (steps {k} and {k + 1}) are not connected in scan {self.scan_id}"
                )


class NavGraph:
    """All scans of a connectivity directory, loaded lazily and cached.

    Args:
        connectivity_dir: folder holding ``scans.txt`` and ``<scan>_connectivity.json`` files.
    """

    def __init__(self, connectivity_dir: str | os.PathLike):
        self.directory = Path(connectivity_dir)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"connectivity directory {self.directory} does not exist")
        self._graphs: dict[str, ScanGraph] = {}
        self._lock = threading.Lock()

    @cached_property
    def scan_ids(self) -> list[str]:
        """The scans listed in ``scans.txt`` (or present as files when it is absent)."""
        return read_scans_txt(self.directory)

    def __contains__(self, scan_id: object) -> bool:
        return isinstance(scan_id, str) and connectivity_path(self.directory, scan_id).exists()

    def __getitem__(self, scan_id: str) -> ScanGraph:
        g = self._graphs.get(scan_id)
        if g is not None:
            return g
        path = connectivity_path(self.directory, scan_id)
        if not isinstance(scan_id, str) or not path.exists():
            raise UnknownScanError(
                f"unknown scan id {scan_id!r}: no {path.name} in connectivity directory {self.directory}"
            )
        g = ScanGraph(read_connectivity(path, scan_id))
        with self._lock:
            return self._graphs.setdefault(scan_id, g)

    def load_all(self) -> list[ScanGraph]:
        """Load every scan of ``scans.txt`` (for precomputations over the whole dataset)."""
        return [self[s] for s in self.scan_ids]

    def distance(self, scan_id: str, a: str, b: str) -> float:
        """Shortest-path distance in metres between two viewpoints of a scan."""
        return self[scan_id].distance(a, b)

    def shortest_path(self, scan_id: str, a: str, b: str) -> list[str]:
        """Viewpoint ids of a shortest path between two viewpoints of a scan."""
        return self[scan_id].shortest_path(a, b)
