"""The real R2R splits in ../shared/data (skipped when absent); synthetic twins live in test_datasets_r2r.py."""
from __future__ import annotations

import numpy as np
import pytest

from vln.datasets import load_split, read_r2r_paths
from vln.datasets.aug_paths import candidate_pairs
from vln.graph import NavGraph
from vln.tokenizers import BASE_VOCAB, R2RTokenizer

#: (paths, instructions, scans) per split, from ../shared/data/README.md.
COUNTS = {"train": (4675, 14039, 61), "val_seen": (340, 1021, 56), "val_unseen": (783, 2349, 11),
          "test": (1391, 4173, 18)}


@pytest.fixture(scope="module")
def nav(real_data):
    return NavGraph(real_data / "connectivity")


@pytest.mark.parametrize("split", list(COUNTS))
def test_split_loads_with_graph_validation_and_expected_counts(real_data, nav, split):
    eps = load_split("r2r", real_data, split, graph=nav)
    paths, instructions, scans = COUNTS[split]
    assert len(eps) == instructions
    assert len({e.path_id for e in eps}) == paths and len({e.scan for e in eps}) == scans
    assert len({e.instr_id for e in eps}) == instructions
    if split == "test":
        assert all(e.distance is None and len(e.path) == 1 for e in eps)
    else:
        # The stored distance is the summed step length (within 5 cm, README verification).
        for e in eps[::50]:
            g = nav[e.scan]
            pos = g.positions[[g.index[v] for v in e.path]]
            assert abs(np.linalg.norm(np.diff(pos, axis=0), axis=1).sum() - e.distance) < 0.05


def test_train_vocab_matches_envdrop(real_data):
    eps = load_split("r2r", real_data, "train")
    vocab = R2RTokenizer().build_vocab((e.instruction for e in eps), min_count=5)
    # EnvDrop's train_vocab.txt: 991 lines (<PAD> <UNK> <EOS> + 988 words), <BOS> added on load.
    assert len(vocab) == 991
    assert vocab[:8] == list(BASE_VOCAB) + ["the", ".", "and", "walk", "turn"]
    assert vocab[-3:] == ["pgi", "straw", "body"]
    tok = R2RTokenizer(vocab)
    assert tok.vocab_size == 992
    lengths = np.array([tok.encode(e.instruction)[1] for e in eps])
    assert lengths.max() == 80 and 25 < lengths.mean() < 40


def test_train_scans_hold_about_as_many_aug_pairs_as_the_original_data(real_data, nav):
    scans = sorted({r.scan for r in read_r2r_paths(real_data / "R2R" / "R2R_train.json")})
    total = sum(len(candidate_pairs(nav[s])) for s in scans)
    # The original augmentation file held about 170k paths of 4-6 edges on these scans.
    assert 150_000 < total < 200_000
