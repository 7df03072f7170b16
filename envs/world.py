"""Everything static an environment needs, built once: episodes, graphs, candidates, features.

:class:`NavWorld` concatenates the per-scan EnvDrop candidate tables of every scan of a split into
one global CSR table (global viewpoint id = scan offset + local index), tokenises every
instruction once and maps every viewpoint to its feature row, so that stepping a batch of
episodes is pure array indexing (:mod:`envs.batch`).
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vln.candidates import candidate_table
from vln.data_root import prepare_data_dir
from vln.datasets import load_split
from vln.datasets.episode import check_path_in_graph
from vln.errors import DataFormatError
from vln.sim.geometry import ELEVATION_INCREMENT, HEADING_COUNT, HEADING_INCREMENT, NUM_VIEWS, snap_heading
from vln.sim.graph_sim import shared_navgraph

from .tables import build_step_tables

logger = logging.getLogger(__name__)


#: (heading, elevation) in radians of each view index, as Python floats (trajectory entries).
VIEW_POSES = [(float(v % HEADING_COUNT) * HEADING_INCREMENT, (v // HEADING_COUNT - 1) * ELEVATION_INCREMENT)
              for v in range(NUM_VIEWS)]


class PoseEntries(dict):
    """Trajectory entries ``(viewpoint id, heading, elevation)`` by key ``global viewpoint * 36 + view``.

    Built on first use and shared by every trajectory of the world: immutable tuples, so a
    trajectory is a list of references rather than a list of new lists.
    """

    def __init__(self, viewpoint_ids: list[str]):
        super().__init__()
        self._ids = viewpoint_ids

    def __missing__(self, key: int) -> tuple:
        vp, view = divmod(key, NUM_VIEWS)
        entry = self[key] = (self._ids[vp], *VIEW_POSES[view])
        return entry


def draw_episode(rng: np.random.Generator, n: int) -> int:
    """A uniform episode index in ``[0, n)`` from ``rng``: ``floor(u * n)`` of one ``rng.random()``.

    Every environment draws its episodes with this function, so that the vector environment's
    sub-environment ``i`` equals a single environment seeded alike. (One ``random()`` costs a
    third of ``integers(n)``; the bias of ``floor(u * n)`` is below ``n / 2**53``.)
    """
    return min(int(rng.random() * n), n - 1)


@dataclass
class EnvConfig:
    """Configuration of a navigation environment.

    Attributes:
        dataset: ``"r2r"`` or ``"rxr"`` (``vln.datasets.DATASETS``).
        split: split name (``train``, ``val_seen``, ``val_unseen``, ``test``).
        data_dir: data root holding ``R2R/``, ``RxR/``, ``connectivity/`` (default: the synthetic
            world at ``vln.synthetic.default_data_dir()``, generated there on first use; a given
            folder must hold the data: see :func:`vln.data_root.prepare_data_dir`).
        connectivity_dir: graphs (default ``<data_dir>/connectivity``).
        features: a feature store path, an open FeatureStore, an encoder name (looked up at
            ``<data_dir>/features/<name>.feats``), or None for zero visual features.
        tokenizer: a tokenizer object (``encode(sentence, max_length) -> (ids, length)``), a vocab
            file, or None to build the vocabulary from the train split (so does a
            :class:`vln.tokenizers.VocabTokenizer` without a vocabulary, splitting with its settings,
            e.g. a ``MultilingualTokenizer(stanza_dir=...)``).
        max_instruction_length: tokens (R2R 80, RxR 160).
        max_episode_steps: actions before truncation (35).
        max_candidates: padded candidate slots K; action K is STOP.
        reward: name in ``envs.rewards.REWARDS``.
        success_radius: metres (3.0, strict ``<``).
        language: RxR language filter (``"en"``, ``"hi-IN"`` ...).
        feature_mode: ``"numpy"`` (features in the observation) or ``"index"`` (only feature rows,
            for agents that keep the features on the GPU as one tensor).
        scans_dir: skybox root for ``render("rgb_array")`` (default ``<data_dir>/scans``).
    """

    dataset: str = "r2r"
    split: str = "train"
    data_dir: str | os.PathLike | None = None
    connectivity_dir: str | os.PathLike | None = None
    features: object = None
    tokenizer: object = None
    max_instruction_length: int = 80
    max_episode_steps: int = 35
    max_candidates: int = 16
    reward: str = "envdrop"
    success_radius: float = 3.0
    language: str | None = None
    feature_mode: str = "numpy"
    scans_dir: str | os.PathLike | None = None


def build_tokenizer(cfg: EnvConfig, data_dir: Path, graph, train_episodes=None):
    """The tokenizer of ``cfg``: given, read from a vocab file, or built from the train split
    (``train_episodes`` when the caller has read it already)."""
    from vln.tokenizers import MultilingualTokenizer, R2RTokenizer

    cls = MultilingualTokenizer if cfg.dataset == "rxr" else R2RTokenizer
    tok = cfg.tokenizer
    if isinstance(tok, (str, os.PathLike)):
        return cls.from_file(tok, encoding_length=cfg.max_instruction_length)
    if tok is not None and getattr(tok, "vocab", True):
        return tok
    # No vocabulary yet: build one from the train split with the given splitter (or the default).
    splitter = tok if tok is not None else cls(encoding_length=cfg.max_instruction_length)
    kw = {"language": cfg.language} if cfg.dataset == "rxr" else {}
    train = train_episodes if train_episodes is not None else load_split(cfg.dataset, data_dir, "train", **kw)
    return splitter.with_vocab(splitter.build_vocab([e.instruction for e in train]))


def open_features(features, data_dir: Path):
    """A FeatureStore (or None) from a path, an encoder name or a store.

    An encoder name whose store is missing is extracted when cheap (annotation features of a
    synthetic world), else an error lists what it needs (:func:`features.ensure.ensure_feature_store`).
    """
    if features is None or hasattr(features, "as_array"):
        return features
    from features.store import open_feature_store

    path = Path(features)
    if isinstance(features, str) and os.sep not in features and not path.suffix:  # an encoder name
        from features.ensure import ensure_feature_store

        path = ensure_feature_store(data_dir, features)
    return open_feature_store(path)


def required_splits(cfg: EnvConfig, episodes) -> tuple:
    """Split files a world of ``cfg`` reads: its split (unless given episodes), train for the vocabulary."""
    splits = [] if episodes is not None else [cfg.split]
    if cfg.tokenizer is None and "train" not in splits:
        splits.append("train")
    return tuple(splits)


class NavWorld:
    """Static tables of one split: the episodes and everything needed to step them.

    Args:
        cfg: the configuration.
        episodes: episodes to use instead of reading ``cfg.split`` from disk (for example sampled
            augmentation paths whose instructions a speaker writes during training: see
            :meth:`set_instructions`). Their paths are checked against the graphs.
    """

    def __init__(self, cfg: EnvConfig, episodes=None):
        self.cfg = cfg
        # The default location gets the synthetic world on first use; a given folder is checked.
        self.data_dir = prepare_data_dir(cfg.dataset, cfg.data_dir, required_splits(cfg, episodes), cfg.connectivity_dir)
        conn = Path(cfg.connectivity_dir) if cfg.connectivity_dir else self.data_dir / "connectivity"
        self.navgraph = shared_navgraph(str(conn.resolve()))
        if episodes is None:
            kw = {"language": cfg.language} if cfg.dataset == "rxr" and cfg.language else {}
            self.episodes = load_split(cfg.dataset, self.data_dir, cfg.split, graph=self.navgraph, **kw)
        else:
            self.episodes = list(episodes)
            for ep in self.episodes:
                check_path_in_graph(self.navgraph, ep.source or f"<{cfg.split} episodes>", f"instr_id {ep.instr_id}",
                                    ep.scan, ep.path)
        if not self.episodes:
            raise ValueError(f"{cfg.dataset} split {cfg.split!r} in {self.data_dir} holds no episodes")
        self.instr_ids = np.array([e.instr_id for e in self.episodes], dtype=object)  #: (E,) str, by episode index
        own_train = self.episodes if episodes is None and cfg.split == "train" else None  # read once
        self.tokenizer = build_tokenizer(cfg, self.data_dir, self.navgraph, own_train)
        self._build_graph_tables()
        self._build_instructions()
        self.store = open_features(cfg.features, self.data_dir)
        self._build_feature_rows()
        target = self.step_tables.target
        #: (N, K) int64 feature row of each candidate's viewpoint, -1 = padding (index-mode observations)
        self.candidate_feature_rows = np.where(target >= 0, self.feature_rows.take(np.maximum(target, 0)), -1)

    # ------------------------------------------------------------------ tables
    def _build_graph_tables(self):
        cfg = self.cfg
        scans = sorted({e.scan for e in self.episodes})
        self.scans = scans
        self.graphs = [self.navgraph[s] for s in scans]
        self.scan_index = {s: i for i, s in enumerate(scans)}
        sizes = np.array([len(g) for g in self.graphs])
        self.scan_offset = np.r_[0, np.cumsum(sizes)[:-1]].astype(np.int64)
        self.max_scan_size = int(sizes.max())
        tables = [candidate_table(g) for g in self.graphs]
        counts = np.concatenate([t.counts() for t in tables])
        if counts.max(initial=0) > cfg.max_candidates:
            worst = int(np.argmax(counts))
            raise ValueError(f"a viewpoint has {counts.max()} candidates (global viewpoint {worst}) but "
                             f"max_candidates={cfg.max_candidates}; raise max_candidates")
        self.cand_ptr = np.r_[0, np.cumsum(counts)].astype(np.int64)
        self.cand_target = np.concatenate([t.viewpoint + o for t, o in zip(tables, self.scan_offset)])
        self.cand_point_id = np.concatenate([t.point_id for t in tables])
        self.cand_heading = np.concatenate([t.normalized_heading for t in tables])
        self.cand_elevation = np.concatenate([t.elevation for t in tables])
        self.cand_distance = np.concatenate([t.rel_distance for t in tables])  # metres (float32 values)
        self.max_candidate_distance = float(self.cand_distance.max(initial=0.0))
        self.viewpoint_ids = [v for g in self.graphs for v in g.viewpoint_ids]
        self.pose_entries = PoseEntries(self.viewpoint_ids)
        self.scan_of_global = np.repeat(np.arange(len(scans)), sizes)
        # All-pairs distances and Dijkstra predecessors of every scan, flattened, so that the
        # distance to the goal and the teacher's next hop of a whole batch are one gather each.
        self.scan_size = sizes.astype(np.int64)
        self.pair_base = np.r_[0, np.cumsum(sizes * sizes)[:-1]].astype(np.int64)
        self.pair_distance = np.concatenate([g.distances.ravel() for g in self.graphs])
        self.pair_predecessor = np.concatenate([g.predecessors.ravel().astype(np.int64) for g in self.graphs])
        # Padded (N, K) candidate tables, candidate angles and teacher actions: a batch step is one gather each.
        self.step_tables = build_step_tables(self)

    def _build_instructions(self):
        L = self.cfg.max_instruction_length
        ids = np.zeros((len(self.episodes), L), dtype=np.int64)
        lengths = np.zeros(len(self.episodes), dtype=np.int64)
        for i, ep in enumerate(self.episodes):
            enc, n = self.tokenizer.encode(ep.instruction, max_length=L)
            ids[i, : len(enc)] = enc[:L]
            lengths[i] = n
        self.instruction_ids, self.instruction_lengths = ids, lengths
        self.vocab_size = int(self.tokenizer.vocab_size)
        self.episode_scan = np.array([self.scan_index[e.scan] for e in self.episodes], dtype=np.int64)
        self.episode_start = np.array([self.graphs[s].index[e.path[0]] for s, e in zip(self.episode_scan, self.episodes)])
        self.episode_goal = np.array([self.graphs[s].index[e.path[-1]] for s, e in zip(self.episode_scan, self.episodes)])
        self.episode_heading = np.array([e.heading for e in self.episodes], dtype=np.float64)
        # The simulator snaps the start heading to a 30-degree step at elevation 0 (view 12..23).
        self.episode_view = np.array([snap_heading(h)[0] + HEADING_COUNT for h in self.episode_heading.tolist()],
                                     dtype=np.int64)
        self.has_goal = len(self.episodes[0].path) > 1 or all(len(e.path) > 1 for e in self.episodes[:50])

    def _build_feature_rows(self):
        """Feature row of every global viewpoint (-1 for excluded ones); checks coverage."""
        n = len(self.viewpoint_ids)
        self.feature_rows = np.full(n, -1, dtype=np.int64)
        if self.store is None:
            self.feature_dim = 0
            self.features = np.zeros((0, 36, 0), dtype=np.float32)
            self._feature_bounds = (-1.0, 1.0)
            return
        self.feature_dim = int(self.store.dim)
        index = self.store.index
        missing = []
        for s, g, off in zip(self.scans, self.graphs, self.scan_offset):
            for ix in np.flatnonzero(g.included):
                row = index.get((s, g.viewpoint_ids[ix]))
                if row is None:
                    missing.append((s, g.viewpoint_ids[ix]))
                else:
                    self.feature_rows[off + ix] = row
        if missing:
            raise DataFormatError(self.store.path, f"{missing[0][0]}_{missing[0][1]}", None,
                                  f"has no features for {len(missing)} viewpoints of split {self.cfg.split!r} "
                                  f"(first: scan {missing[0][0]}, viewpoint {missing[0][1]})")
        # Keep the table in memory when it fits comfortably (a memory map page-faults per step).
        # A store is read once: the worlds of every split share its array (a TSV decodes once).
        table = self.store.as_array()
        self.features = np.ascontiguousarray(table) if table.nbytes < 4 << 30 else table
        self._feature_bounds = None

    @property
    def feature_bounds(self) -> tuple[float, float]:
        """(floor of the minimum, ceiling of the maximum) of the features of this world's viewpoints.

        Computed on first use (the Gymnasium observation space asks for it; training does not),
        a few hundred rows at a time.
        """
        if self._feature_bounds is None:
            rows = np.unique(self.feature_rows[self.feature_rows >= 0])
            lo, hi = np.inf, -np.inf
            for start in range(0, len(rows), 256):
                block = self.features[rows[start:start + 256]]
                lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
            self._feature_bounds = (float(np.floor(lo)), float(np.ceil(hi)))
        return self._feature_bounds

    def set_instructions(self, episodes: np.ndarray, ids: np.ndarray, lengths: np.ndarray) -> None:
        """Replace the encoded instructions of ``episodes`` (a speaker's output in back-translation).

        Args:
            episodes: (n,) int episode indices.
            ids: (n, L') int64 token ids (``<BOS> words <EOS>``, padded); padded with ``<PAD>``
                to ``max_instruction_length``, or cut to it with ``<EOS>`` in the last position.
            lengths: (n,) int tokens used per row (``<BOS>`` and ``<EOS>`` included).
        """
        episodes = np.asarray(episodes, dtype=np.int64)
        ids = np.asarray(ids, dtype=np.int64)
        L = self.instruction_ids.shape[1]
        if ids.ndim != 2 or len(ids) != len(episodes) or len(lengths) != len(episodes):
            raise ValueError(f"expected ids (n, L) and lengths (n,) for {len(episodes)} episodes, got "
                             f"{ids.shape} and {np.shape(lengths)}")
        n = min(L, ids.shape[1])
        rows = np.full((len(episodes), L), int(self.tokenizer.pad_id), dtype=np.int64)
        rows[:, :n] = ids[:, :n]
        lengths = np.asarray(lengths, dtype=np.int64)
        cut = lengths > L
        rows[cut, L - 1] = int(self.tokenizer.eos_id)  # as the tokenizer cuts: <EOS> in the last slot
        self.instruction_ids[episodes] = rows
        self.instruction_lengths[episodes] = np.minimum(lengths, L)

    def episode_index(self, instr_id: str) -> int:
        """Index of the episode with ``instr_id``."""
        if not hasattr(self, "_by_id"):
            self._by_id = {e.instr_id: i for i, e in enumerate(self.episodes)}
        try:
            return self._by_id[instr_id]
        except KeyError:
            raise KeyError(f"no episode {instr_id!r} in {self.cfg.dataset} split {self.cfg.split!r}") from None
