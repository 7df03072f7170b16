"""torch.distributed as torchrun sets it up: one process per device, nothing home-made.

``torchrun --nproc-per-node G [--nnodes N --rdzv-backend c10d --rdzv-endpoint HOST:PORT] script.py``
sets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` / ``MASTER_PORT``; :func:`init_distributed`
joins the process group when ``WORLD_SIZE > 1`` (NCCL on GPUs, gloo on CPUs) and says which device
this process uses. Without torchrun the same code runs as one process (world size 1): the helpers
below then do nothing.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """This process's place: ``rank`` of ``world_size`` processes, ``local_rank`` on its node, its device."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes checkpoints, TensorBoard and logs."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join torchrun's process group (when ``WORLD_SIZE > 1``) and pick the device.

    Args:
        device: ``auto`` (CUDA ``LOCAL_RANK`` when CUDA is available, else CPU), ``cpu`` or ``cuda``.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    dev = torch.device("cuda", local) if use_cuda else torch.device("cpu")
    if use_cuda:
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo", device_id=dev if use_cuda else None)
    return DistInfo(rank, world, local, dev)


def all_reduce_sum(values: list[float], info: DistInfo) -> list[float]:
    """Elementwise sums of ``values`` over all processes (the values themselves in one process)."""
    if not info.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


def gather_to_all(obj, info: DistInfo) -> list:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process (``[obj]`` in one process)."""
    if not info.distributed:
        return [obj]
    out = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def shutdown(info: DistInfo) -> None:
    """Leave the process group (at the end of a run)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()
