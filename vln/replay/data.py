"""The data the replay page is built from: an episode list and one view model per episode.

:class:`ReplayData` reads a split file (R2R ``.json`` or RxR ``.jsonl[.gz]``), an optional agent
trajectory file (:mod:`vln.replay.trajectories`) and a connectivity folder. Scans are loaded
lazily: :meth:`ReplayData.episode` touches the one scan of its episode, so opening an episode of
a 90-scan dataset reads one connectivity file; :meth:`ReplayData.index` (the searchable list with
success and navigation error) scores every episode that has a trajectory, loading those scans
once, with the official-semantics :class:`vln.evaluate.Evaluator`.

Everything returned is plain JSON (str, float, int, bool, None, lists, dicts); floats are
rounded to 4 decimals. Positions are metres in the connectivity frame (x east, y north, z up);
headings are radians or integer degrees clockwise from +y, as R2R's.
"""
from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
from pathlib import Path

import numpy as np

from ..candidates import candidate_table
from ..datasets.splits import not_in_split_message
from ..evaluate import Evaluator, load_reference_episodes
from ..graph import NavGraph
from ..metrics import SUCCESS_DISTANCE, collapse_repeats, trajectory_indices, viewpoint_of
from ..submission import SubmissionError
from ..tokenizers import R2RTokenizer, split_words
from .images import VFOV, VIEW_SIZE
from .trajectories import AgentRun, read_trajectories

logger = logging.getLogger(__name__)

#: Viewpoints whose height differs from the episode's by more than this (metres) are left out
#: of the top-down plot: they are on another floor (Matterport floors are ~3 m apart).
FLOOR_MARGIN = 1.0
#: ``chosen`` value of a step whose decision was STOP.
STOP = "stop"
_SAFE_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def episode_key(instr_id: str) -> str:
    """A file-name-safe key for an instr_id (the id itself when it is already safe)."""
    if _SAFE_KEY.fullmatch(instr_id) and ".." not in instr_id:
        return instr_id
    return "h" + hashlib.sha1(instr_id.encode("utf-8")).hexdigest()[:20]


def tokenize(instruction: str, language: str) -> list[str]:
    """The tokens an agent attends over: EnvDrop's R2R split for English, else the multilingual split."""
    if language.split("-")[0].lower() == "en":
        return R2RTokenizer.split_sentence(instruction)
    return split_words(instruction)


def token_spans(text: str, tokens: list[str]) -> list[dict]:
    """Locate tokens in the original text, left to right, ignoring case.

    Returns:
        one ``{"text", "start", "end"}`` per token; ``start``/``end`` are character offsets into
        ``text`` or ``None`` for a token not found there (``<EOS>``, a normalised form).
    """
    out, cursor = [], 0
    for tok in tokens:
        m = re.compile(re.escape(tok), re.IGNORECASE).search(text, cursor) if tok else None
        if m is None:
            out.append({"text": tok, "start": None, "end": None})
        else:
            out.append({"text": tok, "start": m.start(), "end": m.end()})
            cursor = m.end()
    return out


def heading_to(positions: np.ndarray, a: int, b: int) -> float:
    """Heading in radians from viewpoint ``a`` to ``b`` (clockwise from +y, in [0, 2pi))."""
    d = positions[b] - positions[a]
    return math.atan2(d[0], d[1]) % (2 * math.pi)


def project_to_view(heading: float, elevation: float, view_heading: float, size=VIEW_SIZE, vfov: float = VFOV):
    """Where a direction appears in a view at ``view_heading`` (elevation 0).

    Args:
        heading, elevation: the direction, radians (heading clockwise from +y, elevation up).
        view_heading: the camera heading, radians.
        size: (width, height) of the view in pixels (sets the horizontal field of view).
        vfov: vertical field of view, radians.

    Returns:
        ``(x, y)`` fractions of the image width / height (0, 0 = top left), or ``None`` when the
        direction is outside the view.
    """
    d = np.array([math.sin(heading) * math.cos(elevation), math.cos(heading) * math.cos(elevation), math.sin(elevation)])
    fwd = np.array([math.sin(view_heading), math.cos(view_heading), 0.0])
    right = np.array([math.cos(view_heading), -math.sin(view_heading), 0.0])
    depth = float(d @ fwd)
    if depth <= 1e-9:
        return None
    ty = math.tan(vfov / 2)
    tx = ty * size[0] / size[1]
    u, v = float(d @ right) / depth / tx, float(d[2]) / depth / ty
    if abs(u) > 1 or abs(v) > 1:
        return None
    return (u + 1) / 2, (1 - v) / 2


def _r(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 4)


class ReplayData:
    """Episodes, trajectories and graphs behind the replay page.

    Args:
        split_file: R2R ``.json`` or RxR ``.jsonl[.gz]`` split.
        connectivity: folder of ``<scan>_connectivity.json`` (or a :class:`NavGraph`).
        trajectories: agent trajectory file (see :mod:`vln.replay.trajectories`) or ``None`` to
            browse the reference paths only.
        success_distance: success radius in metres.

    Raises:
        SubmissionError: the trajectory file names an instr_id the split does not hold, or its
            attention rows do not fit the instruction or the trajectory.
    """

    def __init__(self, split_file, connectivity, trajectories=None, success_distance: float = SUCCESS_DISTANCE):
        self.split_file = Path(split_file)
        self.graphs = connectivity if isinstance(connectivity, NavGraph) else NavGraph(connectivity)
        self.success_distance = success_distance
        self.episodes = {str(ep.instr_id): ep for ep in load_reference_episodes(self.split_file)}
        self.trajectory_file = str(trajectories) if trajectories is not None else None
        self.runs: dict[str, AgentRun] = read_trajectories(trajectories) if trajectories is not None else {}
        self.keys = {}
        for iid in self.episodes:
            key = episode_key(iid)
            if key in self.keys:
                raise ValueError(f"instr_ids {self.keys[key]!r} and {iid!r} map to one file name {key!r}")
            self.keys[key] = iid
        unknown = [iid for iid in self.runs if iid not in self.episodes]
        if unknown:
            raise SubmissionError(self.trajectory_file, f"instr_id {unknown[0]}", "instr_id",
                                  not_in_split_message(unknown, self.split_file, len(self.runs)))
        for iid, run in self.runs.items():
            self._check_run(run)
        self._index: list | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ checks
    def _check_run(self, run: AgentRun) -> None:
        src, rec = self.trajectory_file, f"instr_id {run.instr_id}"
        ep = self.episodes[run.instr_id]
        if run.attention is None:
            return
        n_tok = len(run.tokens) if run.tokens is not None else len(tokenize(ep.instruction, ep.language))
        if run.attention.shape[1] != n_tok:
            raise SubmissionError(src, rec, "attention",
                                  f"rows hold {run.attention.shape[1]} weights but the instruction has {n_tok} tokens; "
                                  "add a 'tokens' list naming what the weights refer to")
        vps = [viewpoint_of(e) for e in run.trajectory]
        n_steps = 1 + sum(a != b for a, b in zip(vps, vps[1:]))
        if run.attention.shape[0] not in (n_steps - 1, n_steps):
            raise SubmissionError(src, rec, "attention",
                                  f"holds {run.attention.shape[0]} rows but the trajectory visits {n_steps} viewpoints "
                                  f"(one row per decision: {n_steps} with the final STOP, {n_steps - 1} without)")

    # ------------------------------------------------------------------ episode list
    def index(self) -> list[dict]:
        """One summary row per episode, in split order (cached).

        Rows: ``instr_id``, ``key`` (file name of the episode's data), ``scan``, ``has_trajectory``,
        ``has_attention`` and, where the agent's trajectory and a goal exist, ``success`` (bool),
        ``nav_error`` and ``spl`` (metres / [0, 1]), ``steps`` (moves); else those are ``None``.
        """
        with self._lock:
            if self._index is None:
                self._index = self._build_index()
            return self._index

    def _build_index(self) -> list[dict]:
        scored = [self.episodes[i] for i in self.runs if len(self.episodes[i].path) >= 2]
        metrics = {}
        if scored:
            ev = Evaluator(self.graphs, scored, success_distance=self.success_distance)
            result = ev.score({ep.instr_id: self.runs[ep.instr_id].trajectory for ep in scored}, allow_partial=True,
                              source=self.trajectory_file)
            metrics = {r["instr_id"]: r for r in result.episodes}
        rows = []
        for iid, ep in self.episodes.items():
            m = metrics.get(iid)
            run = self.runs.get(iid)
            rows.append({
                "instr_id": iid, "key": episode_key(iid), "scan": ep.scan,
                "has_trajectory": run is not None, "has_attention": run is not None and run.attention is not None,
                "success": bool(m["success"]) if m else None, "nav_error": _r(m["nav_error"]) if m else None,
                "spl": _r(m["spl"]) if m else None, "steps": int(m["steps"]) if m else None,
            })
        return rows

    # ------------------------------------------------------------------ one episode
    def episode_by_key(self, key: str) -> dict:
        """:meth:`episode` of the instr_id whose :func:`episode_key` is ``key`` (KeyError if none)."""
        return self.episode(self.keys[key])

    def episode(self, instr_id: str, images=True) -> dict:
        """The view model of one episode; loads only the episode's scan.

        Args:
            instr_id: the instruction id.
            images: whether skybox images exist: a bool, or ``images(scan, viewpoint) -> bool``
                (e.g. :meth:`vln.replay.images.ViewRenderer.available`); sets each step's image
                URLs or ``None``.

        Returns:
            dict with ``instr_id``, ``scan``, ``instruction``, ``language``, ``tokens`` (see
            :func:`token_spans`), ``attention`` ((S, L) nested lists or ``None``),
            ``source`` (``"agent"`` or ``"reference"``: whose steps are replayed), ``reference``
            and ``agent`` (viewpoint id lists; ``agent`` collapsed, ``None`` without trajectory),
            ``metrics`` (:data:`vln.metrics.EPISODE_KEYS` or ``None``), ``steps`` and ``plot``
            (see :meth:`_steps`, :meth:`_plot`).
        """
        ep = self.episodes[instr_id]
        g = self.graphs[ep.scan]
        run = self.runs.get(instr_id)
        where = f"instr_id {instr_id}"
        ref = trajectory_indices(g, ep.path, f"{where} (reference path)")
        metrics = None
        if run is not None:
            traj = trajectory_indices(g, run.trajectory, f"{self.trajectory_file}, {where}")
            if len(ep.path) >= 2:
                rec = Evaluator(self.graphs, [ep], success_distance=self.success_distance).score(
                    {instr_id: run.trajectory}, source=self.trajectory_file).episodes[0]
                metrics = {k: (_r(v) if isinstance(v, float) else v) for k, v in rec.items() if k not in ("instr_id", "scan")}
        else:
            traj = ref
        nodes = collapse_repeats(traj)
        tokens = run.tokens if run is not None and run.tokens is not None else tokenize(ep.instruction, ep.language)
        return {
            "instr_id": instr_id, "key": episode_key(instr_id), "scan": ep.scan, "path_id": ep.path_id,
            "instruction": ep.instruction, "language": ep.language, "tokens": token_spans(ep.instruction, tokens),
            "attention": None if run is None or run.attention is None else np.round(run.attention, 4).tolist(),
            "source": "agent" if run is not None else "reference",
            "reference": list(ep.path),
            "agent": [g.viewpoint_ids[i] for i in nodes] if run is not None else None,
            "success_distance": self.success_distance,
            "metrics": metrics,
            "steps": self._steps(ep, g, nodes, run, int(ref[-1]), images),
            "plot": self._plot(g, ref, nodes if run is not None else None),
        }

    def _steps(self, ep, g, nodes: np.ndarray, run: AgentRun | None, goal: int, images) -> list[dict]:
        """One dict per visited viewpoint: ``viewpoint``, ``heading_deg`` (integer degrees the view
        faces: the next viewpoint, or the final pose), ``distance_to_goal`` (metres),
        ``candidates`` (EnvDrop order: ``viewpoint``, ``point_id`` 0..35, ``heading`` /
        ``elevation`` radians, ``in_view`` [x, y] fractions or ``None``), ``chosen`` (candidate
        index; ``"stop"`` at the last viewpoint; ``None`` for a move to a neighbour that is not an
        EnvDrop candidate), ``next_viewpoint``, ``view`` / ``pano`` image URLs relative to the page (or ``None``).
        """
        table = candidate_table(g)
        pos = g.positions
        final_heading = ep.heading
        if run is not None and not isinstance(run.trajectory[-1], str):
            final_heading = run.trajectory[-1][1]
        elif len(nodes) >= 2:
            final_heading = heading_to(pos, int(nodes[-2]), int(nodes[-1]))
        steps = []
        for t, ix in enumerate(nodes.tolist()):
            rows = table.rows(ix)
            cand_vps = table.viewpoint[rows].tolist()
            nxt = int(nodes[t + 1]) if t + 1 < len(nodes) else None
            chosen = STOP if nxt is None else (cand_vps.index(nxt) if nxt in cand_vps else None)
            if nxt is None:
                heading = final_heading
            elif chosen is not None:
                heading = float(table.normalized_heading[rows][chosen])
            else:
                heading = heading_to(pos, ix, nxt)
            deg = int(round(math.degrees(heading))) % 360
            cands = []
            for v, p, h, e in zip(cand_vps, table.point_id[rows].tolist(), table.normalized_heading[rows].tolist(),
                                  table.elevation[rows].tolist()):
                at = project_to_view(h, e, math.radians(deg))
                cands.append({"viewpoint": g.viewpoint_ids[v], "point_id": p, "heading": _r(h), "elevation": _r(e),
                              "distance_to_goal": _r(g.distances[v, goal]),
                              "in_view": None if at is None else [_r(at[0]), _r(at[1])]})
            vp = g.viewpoint_ids[ix]
            has_img = images(ep.scan, vp) if callable(images) else bool(images)
            steps.append({
                "viewpoint": vp, "heading_deg": deg, "distance_to_goal": _r(g.distances[ix, goal]),
                "candidates": cands, "chosen": chosen,
                "next_viewpoint": None if nxt is None else g.viewpoint_ids[nxt],
                "view": f"images/{ep.scan}/{vp}/view_{deg:03d}.png" if has_img else None,
                "pano": f"images/{ep.scan}/{vp}/pano.png" if has_img else None,
            })
        return steps

    def _plot(self, g, ref: np.ndarray, agent: np.ndarray | None) -> dict:
        """Top-down plot data of the episode's floor.

        Returns:
            dict with ``nodes`` (``[id, x, y, z]`` metres), ``edges`` (pairs of node positions in
            ``nodes``), ``reference`` / ``agent`` (node positions along each path; ``agent`` may
            be ``None``), ``bounds`` ``[xmin, ymin, xmax, ymax]`` metres.
        """
        used = np.concatenate([ref, agent]) if agent is not None else ref
        z = g.positions[:, 2]
        lo, hi = z[used].min() - FLOOR_MARGIN, z[used].max() + FLOOR_MARGIN
        keep = np.flatnonzero(g.included & (z >= lo) & (z <= hi))
        slot = np.full(len(g), -1, dtype=np.int64)
        slot[keep] = np.arange(len(keep))
        sub = g.adjacency[np.ix_(keep, keep)]
        i, j = np.nonzero(np.triu(sub | sub.T, 1))
        xy = g.positions[keep]
        return {
            "nodes": [[g.viewpoint_ids[k], _r(x), _r(y), _r(zz)] for k, (x, y, zz) in zip(keep.tolist(), xy.tolist())],
            "edges": np.stack([i, j], 1).tolist(),
            "reference": slot[ref].tolist(),
            "agent": slot[agent].tolist() if agent is not None else None,
            "bounds": [_r(xy[:, 0].min()), _r(xy[:, 1].min()), _r(xy[:, 0].max()), _r(xy[:, 1].max())],
        }

    # ------------------------------------------------------------------ misc
    def scans(self) -> set[str]:
        """Scan ids of the split's episodes."""
        return {ep.scan for ep in self.episodes.values()}

    def __len__(self) -> int:
        return len(self.episodes)

    def __repr__(self) -> str:
        return f"ReplayData({os.fspath(self.split_file)!r}, {len(self)} episodes, {len(self.runs)} trajectories)"
