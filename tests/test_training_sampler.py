"""The resumable distributed sampler: torch's DistributedSampler order, resumable mid-epoch."""
import pytest
from torch.utils.data import DistributedSampler

from training.sampler import ResumableDistributedSampler


@pytest.mark.parametrize("drop_last", [True, False])
def test_same_order_as_torch_distributed_sampler(drop_last):
    data = list(range(23))
    for world in (1, 2, 3):
        for rank in range(world):
            ours = ResumableDistributedSampler(len(data), world, rank, seed=5, drop_last=drop_last)
            theirs = DistributedSampler(data, world, rank, shuffle=True, seed=5, drop_last=drop_last)
            for epoch in (0, 3):
                ours.set_epoch(epoch)
                theirs.set_epoch(epoch)
                assert list(ours) == list(theirs)
                assert len(ours) == len(theirs)


def test_global_batches_are_the_same_set_on_any_number_of_processes():
    """A global batch of G samples: one process's first G equal the union of W processes' first G / W."""
    one = ResumableDistributedSampler(40, 1, 0, seed=1)
    one.set_epoch(2)
    single = list(one)
    g = 8
    for world in (2, 4):
        ranks = []
        for r in range(world):
            s = ResumableDistributedSampler(40, world, r, seed=1)
            s.set_epoch(2)
            ranks.append(list(s))
        for b in range(40 // g):
            union = sorted(i for r in ranks for i in r[b * g // world:(b + 1) * g // world])
            assert union == sorted(single[b * g:(b + 1) * g])


def test_start_mid_epoch_continues_the_epoch():
    full = []
    for r in range(2):
        s = ResumableDistributedSampler(30, 2, r, seed=3)
        s.set_epoch(1)
        full.append(list(s))
    for r in range(2):
        s = ResumableDistributedSampler(30, 2, r, seed=3)
        s.set_epoch(1, start=12)
        assert list(s) == full[r][6:]
        assert len(s) == len(full[r]) - 6


def test_bad_start_and_rank_are_refused():
    s = ResumableDistributedSampler(30, 2, 1)
    with pytest.raises(ValueError, match="multiple of 2"):
        s.set_epoch(0, start=3)
    with pytest.raises(ValueError, match="within"):
        s.set_epoch(0, start=32)
    with pytest.raises(ValueError, match="rank 2"):
        ResumableDistributedSampler(30, 2, 2)
