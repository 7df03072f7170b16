"""Hand-made connectivity graphs for tests (written in the real Matterport format)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path


def vp_id(name: str) -> str:
    """A deterministic 32-hex-character viewpoint id for a short test name."""
    return hashlib.md5(name.encode()).hexdigest()


def pose_at(x: float, y: float, z: float) -> list[float]:
    """Row-major 4x4 pose with identity rotation and translation (x, y, z)."""
    return [1.0, 0.0, 0.0, x, 0.0, 1.0, 0.0, y, 0.0, 0.0, 1.0, z, 0.0, 0.0, 0.0, 1.0]


def graph_records(positions: dict, edges: list, excluded=()) -> list[dict]:
    """Connectivity records for named viewpoints.

    Args:
        positions: name -> (x, y, z) in metres, in file order.
        edges: (name, name) pairs, made symmetric.
        excluded: names whose ``included`` flag is false.
    """
    names = list(positions)
    ix = {n: i for i, n in enumerate(names)}
    n = len(names)
    unob = [[False] * n for _ in range(n)]
    for a, b in edges:
        unob[ix[a]][ix[b]] = unob[ix[b]][ix[a]] = True
    return [
        {
            "image_id": vp_id(name),
            "pose": pose_at(*positions[name]),
            "included": name not in excluded,
            "visible": list(unob[i]),
            "unobstructed": list(unob[i]),
            "height": 1.5,
        }
        for i, name in enumerate(names)
    ]


def write_graph(directory: Path, scan: str, positions: dict, edges: list, excluded=()) -> Path:
    """Write ``<scan>_connectivity.json`` and append ``scan`` to ``scans.txt``; return the file."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{scan}_connectivity.json"
    path.write_text(json.dumps(graph_records(positions, edges, excluded)))
    txt = directory / "scans.txt"
    scans = txt.read_text().split() if txt.exists() else []
    if scan not in scans:
        txt.write_text("\n".join(scans + [scan]) + "\n")
    return path


#: The 6-viewpoint test house: distances are hand-checkable (A-B 3 m, B-C 4 m, B-E 3 m,
#: A-D 5 m, C-D sqrt(10) m); F is excluded. Shortest A->C is A-B-C (7 m), unique.
TINY_POSITIONS = {
    "A": (0.0, 0.0, 1.5),
    "B": (3.0, 0.0, 1.5),
    "C": (3.0, 4.0, 1.5),
    "D": (0.0, 5.0, 1.5),
    "E": (6.0, 0.0, 1.5),
    "F": (1.0, 1.0, 1.5),
}
TINY_EDGES = [("A", "B"), ("B", "C"), ("C", "D"), ("D", "A"), ("B", "E"), ("A", "F")]
TINY_SCAN = "tinyScan0001"
