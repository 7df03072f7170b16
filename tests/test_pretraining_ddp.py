"""DistributedDataParallel on 2 CPU processes (gloo): a DDP step with global batch B equals one
process's step with batch B, and a 2-process run resumed from its checkpoint continues as one
uninterrupted run would."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from pretrain_helpers import make_batch, split_batch, tiny_model
from vl_helpers import small_corpus, small_world  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_steps(model, runner, info, micro_batches_of_step):
    """Two optimiser steps; the second with 2-way gradient accumulation."""
    from pretraining.optim import build_optimisers
    from pretraining.step import train_step

    opt = build_optimisers(model, total_steps=10, steps_per_epoch=5, lr=1e-3, warmup=0.1)
    model.train()
    for micro in micro_batches_of_step:
        train_step(runner, model, micro, opt, info, qa_weight=1.0, num_cells=4)


def frozen_bn_model(clip):
    from pretraining.optim import apply_bn_policy

    model = tiny_model(clip)
    apply_bn_policy(model, "frozen")  # before DDP wraps it: DDP registers the parameters that need gradients
    return model


def batches():
    return [make_batch(8, seed=1), make_batch(8, seed=2)]


def _ddp_worker(rank, world, port, clip, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from training.distributed import init_distributed, shutdown

    info = init_distributed("cpu")
    model = frozen_bn_model(clip)
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    first, second = batches()
    mine = split_batch(first, [range(rank, 8, world)])                       # 4 pairs, one pass
    two = split_batch(second, [range(rank, 8, 2 * world), range(rank + world, 8, 2 * world)])  # 2 + 2, accumulated
    two_steps(model, ddp, info, [mine, two])
    if rank == 0:
        torch.save(model.state_dict(), out)
    shutdown(info)


def test_ddp_step_equals_single_process_step(tiny_clip_rn, tmp_path):
    from training.distributed import DistInfo

    clip = {k: tiny_clip_rn[k] for k in ("spec", "safetensors")}
    mp.spawn(_ddp_worker, args=(2, free_port(), clip, tmp_path / "ddp.pt"), nprocs=2, join=True)
    model = frozen_bn_model(clip)
    two_steps(model, model, DistInfo(0, 1, 0, torch.device("cpu")), [[b] for b in batches()])
    ddp = torch.load(tmp_path / "ddp.pt")
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ddp[k], v, rtol=1e-5, atol=1e-6, msg=k)
    start = tiny_model(clip).state_dict()
    moved = sum(not torch.equal(start[k], v) for k, v in model.state_dict().items())
    assert moved > 20  # the steps did change the weights (backbone and Transformer)


@pytest.mark.slow
def test_two_process_run_resumes_exactly(small_corpus, tiny_clip_rn, tmp_path):  # noqa: F811
    from pretraining.train import FORMAT, main
    from test_pretraining_train import tiny_args
    from training.checkpoint import load_checkpoint

    _, corpus, _ = small_corpus
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                str(ROOT / "scripts" / "pretrain.py")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for steps in ("2", "4"):  # stopped after 2 steps, then resumed from latest.pt to 4
        args = tiny_args(corpus, tiny_clip_rn, tmp_path / "ddp", "--steps", steps, "--device", "cpu")
        done = subprocess.run([*torchrun, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    main(tiny_args(corpus, tiny_clip_rn, tmp_path / "one", "--steps", "4"))  # one process, uninterrupted
    a, meta_a = load_checkpoint(tmp_path / "ddp" / "latest.pt", fmt=FORMAT)
    b, meta_b = load_checkpoint(tmp_path / "one" / "latest.pt", fmt=FORMAT)
    assert meta_a["step"] == meta_b["step"] == 4 and meta_a["world_size"] == 2 and set(a["rng"]) == {"rank0", "rank1"}
    for k, v in b["model"].items():
        torch.testing.assert_close(a["model"][k], v, rtol=1e-5, atol=1e-6, msg=k)
