"""A distributed sampler that resumes mid-epoch.

:class:`ResumableDistributedSampler` draws what ``torch.utils.data.DistributedSampler`` draws -- each
epoch a permutation of the dataset seeded by ``seed + epoch``, cut (``drop_last``) or wrapped to a
multiple of the number of processes, process ``rank`` taking positions ``rank, rank + W, ...`` --
and can start an epoch part-way: ``set_epoch(epoch, start=k)`` skips the first ``k`` samples of the
epoch *counted over all processes*. A run that saves ``(epoch, samples consumed)`` resumes on any
number of processes whose count divides it, and a global batch of G samples is the same set of
examples whether one process takes all G or W processes take G / W each.
"""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableDistributedSampler(Sampler[int]):
    """Indices of one process for the current epoch (see the module docstring).

    Args:
        size: dataset length.
        num_replicas: processes (world size).
        rank: this process.
        seed: the permutation seed (the same on every process).
        shuffle: permute each epoch (False: dataset order).
        drop_last: drop the tail so every process gets the same count (else wrap around).
    """

    def __init__(self, size: int, num_replicas: int = 1, rank: int = 0, seed: int = 0, shuffle: bool = True,
                 drop_last: bool = True):
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside [0, {num_replicas})")
        if size < num_replicas and drop_last:
            raise ValueError(f"{size} samples cannot be split over {num_replicas} processes")
        self.size, self.num_replicas, self.rank = int(size), int(num_replicas), int(rank)
        self.seed, self.shuffle, self.drop_last = int(seed), shuffle, drop_last
        self.epoch, self.start = 0, 0

    @property
    def per_replica(self) -> int:
        """Samples each process takes in a whole epoch."""
        if self.drop_last:
            return self.size // self.num_replicas
        return math.ceil(self.size / self.num_replicas)

    @property
    def total(self) -> int:
        """Samples of a whole epoch over all processes."""
        return self.per_replica * self.num_replicas

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Draw epoch ``epoch``'s order, skipping its first ``start`` samples (over all processes).

        Raises:
            ValueError: ``start`` is not a multiple of the number of processes or beyond the epoch.
        """
        if start % self.num_replicas or not 0 <= start <= self.total:
            raise ValueError(f"cannot start epoch {epoch} at sample {start}: it must be a multiple of "
                             f"{self.num_replicas} processes within the epoch's {self.total} samples")
        self.epoch, self.start = int(epoch), int(start)

    def order(self) -> list[int]:
        """The whole epoch's order over all processes (``total`` indices)."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        if self.drop_last:
            return order[: self.total]
        pad = self.total - len(order)
        return order + (order * math.ceil(pad / max(1, len(order))))[:pad]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order()[self.start + self.rank :: self.num_replicas])

    def __len__(self) -> int:
        return self.per_replica - self.start // self.num_replicas

    def state_dict(self) -> dict:
        """``{"epoch", "start"}`` (the start as set; a trainer saves its own count of samples consumed)."""
        return {"epoch": self.epoch, "start": self.start}
