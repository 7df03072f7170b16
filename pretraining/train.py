"""Pre-train CLIP-ViLp (MLM + ITM + QA over text tokens and CLIP ResNet grid cells, backbone trained).

On the synthetic corpus or LXMERT-format data, one process or many under torchrun.

Reads top to bottom: settings, distributed setup, run folder, data (pairs, WordPiece, answer
table, examples, the resumable sampler), model and optimisers, resume, the loop, evaluation,
checkpoints. The global batch (``--batch-size``, the paper's 512) is per-device batch x processes x
gradient-accumulation steps, whatever the number of processes.

Run folder: ``params.json``, ``vocab.txt``, ``answers.json`` (ans2label), ``latest.pt`` (model,
both optimisers and schedulers, every process's random states, the step; the sampler position is
the step times the global batch), ``checkpoint.pt`` (written at the end: what fine-tuning starts
from) and ``tb/`` (``train/loss``, ``train/loss_mlm``, ``train/loss_itm``, ``train/loss_qa``,
``train/mlm_acc``, ``train/itm_acc``, ``train/qa_acc``, ``perf/pairs_per_s``, ``val/itm_acc``,
``val/mlm_acc``, ``val/mlm_unigram_acc``, ``val/qa_acc``). Only rank 0 writes.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from training.checkpoint import restore_rng_state, rng_state
from training.config import ConfigMismatchError, parse_config, setting
from training.distributed import DistInfo, all_reduce_sum, barrier, gather_to_all, init_distributed, shutdown
from training.logging import TrainLog
from training.run import LatestPolicy, RunDir, run_name
from training.sampler import ResumableDistributedSampler

from .examples import PretrainExamples
from .model import SIZES, build_model
from .optim import (BACKBONE_LR, BACKBONE_MOMENTUM, BACKBONE_WEIGHT_DECAY, MAX_GRAD_NORM, apply_bn_policy,
                    build_optimisers, peak_lr)
from .step import evaluate, most_frequent_token, train_step

logger = logging.getLogger(__name__)
FORMAT = "clipvil-pretrain-v1"
ANSWERS_FILE = "answers.json"
FINAL_CHECKPOINT = "checkpoint.pt"


@dataclass
class PretrainConfig:
    encoder: str = setting("clip_r50", "CLIP ResNet backbone: a registry name or an encoder spec .json")
    weights: str | None = setting(None, "backbone weights: a file or folder, a tag, or 'random' (tests); default: "
                                  "$CLIPVIL_WEIGHTS_DIR or the local caches")
    data: str = setting("synthetic", "pairs: the synthetic corpus or LXMERT-format JSON", choices=("synthetic", "lxmert"))
    data_dir: str | None = setting(None, "synthetic: the corpus folder (default: built on first use); lxmert: the "
                                   "folder of mscoco_train.json / mscoco_minival.json (or --train-files)")
    sources: str | None = setting(None, "comma-separated sentf sources to train and evaluate on, e.g. mscoco,vg for "
                                  "captions only (default: every source)")
    train_files: str | None = setting(None, "lxmert: comma-separated training JSON files (default: mscoco_train.json)")
    val_files: str | None = setting(None, "lxmert: comma-separated held-out JSON files (default: mscoco_minival.json; "
                                    "'none' for no evaluation)")
    images: str | None = setting(None, "lxmert: the image folder (every img_id's file, any depth) (default: none, --shards)")
    shards: str | None = setting(None, "read pre-resized image shards from this folder (default: none, image files)")
    features: str | None = setting(None, "precomputed grid cells instead of images (no backbone): an image grid store "
                                   "folder, or synthetic_semantic_grid (default: none, images through --encoder)")
    canvas: str = setting("384x640", "HxW every image is resized into (aspect kept, zero-padded)")
    out: str | None = setting(None, "run folder (default: runs/pretrain__<encoder>__<seed>__<time>); an existing one resumes")
    size: str = setting("base", "Transformer size (base: BERT-base)", choices=tuple(SIZES))
    vocab: str | None = setting(None, "a BERT vocab.txt (default: a WordPiece vocabulary trained on the training text)")
    vocab_size: int = setting(30522, "size of a trained vocabulary (at most)")
    bert_init: str | None = setting(None, "folder of BERT weights (Hugging Face names) initialising the Transformer (default: none, "
                                     "BERT's random initialisation)")
    ans2label: str | None = setting(None, "answer table file ({answer: label}) (default: answers of the QA sentences)")
    min_answer_count: int = setting(9, "answers seen this often in the QA sentences form the table")
    epochs: int = setting(20, "epochs (the backbone's milestones and --qa-from-epoch count in them)")
    steps: int = setting(0, "optimiser steps to train (0: all epochs)", may_change_on_resume=True)
    qa_from_epoch: int = setting(9, "first epoch (0-based) with the QA loss (the paper's last 11 of 20)")
    batch_size: int = setting(512, "global batch: pairs per optimiser step over all processes")
    per_device_batch: int = setting(0, "pairs per forward pass on each process (0: the global batch / processes); "
                                    "gradients accumulate over the rest", may_change_on_resume=True)
    lr: float = setting(0.0, "AdamW peak learning rate (0: 1e-4 for RN50, 5e-5 for RN50x4)")
    warmup: float = setting(0.025, "fraction of the steps warming up AdamW linearly (the released commands' 0.025)")
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorms)")
    backbone_lr: float = setting(BACKBONE_LR, "backbone SGD learning rate (x0.1 at epochs 12 and 17)")
    backbone_momentum: float = setting(BACKBONE_MOMENTUM, "backbone SGD momentum (the released code's 0)")
    backbone_weight_decay: float = setting(BACKBONE_WEIGHT_DECAY, "backbone SGD weight decay (the released code's 4e-4)")
    max_grad_norm: float = setting(MAX_GRAD_NORM, "clip the global gradient norm of every update to this (0: off)")
    freeze_backbone: bool = setting(False, "keep the CLIP backbone fixed (Table 8's ablation)")
    bn: str = setting("frozen", "backbone BatchNorm: frozen, train (per-device statistics) or sync (SyncBatchNorm, GPUs)",
                      choices=("frozen", "train", "sync"))
    num_cells: int = setting(100, "grid cells sampled per image (0: all)")
    dropout: float = setting(0.1, "Transformer dropout")
    seed: int = setting(0, "random seed (initialisation, order, masks, negatives)")
    device: str = setting("auto", "cpu, cuda or auto (cuda:LOCAL_RANK under torchrun)", may_change_on_resume=True)
    amp: bool = setting(True, "bf16 autocast on GPUs", may_change_on_resume=True)
    threads: int = setting(0, "torch CPU threads per process (0: torch's default)", may_change_on_resume=True)
    workers: int = setting(2, "data-loader worker processes per process", may_change_on_resume=True)
    eval_every: int = setting(0, "steps between held-out evaluations (0: at the end only)", may_change_on_resume=True)
    eval_pairs: int = setting(2000, "held-out pairs evaluated (0: all)", may_change_on_resume=True)
    latest_every: int = setting(1000, "steps between latest.pt writes (0: off)", may_change_on_resume=True)
    latest_minutes: float = setting(10.0, "minutes between latest.pt writes (0: off)", may_change_on_resume=True)
    log_every: int = setting(20, "steps between logged losses", may_change_on_resume=True)
    progress: bool = setting(True, "show a progress bar (rank 0)", may_change_on_resume=True)


def accumulation(cfg: PretrainConfig, world_size: int) -> tuple[int, int]:
    """(per-device batch, accumulation steps) giving the global batch on ``world_size`` processes.

    Raises:
        ConfigMismatchError: the global batch is not a multiple of per-device batch x processes.
    """
    per = cfg.per_device_batch or cfg.batch_size // world_size
    if per < 1 or cfg.batch_size % (per * world_size):
        raise ConfigMismatchError(f"--batch-size {cfg.batch_size} is not a multiple of --per-device-batch {per} x "
                                  f"{world_size} processes")
    return per, cfg.batch_size // (per * world_size)


def _files(data_dir, names: str | None, default: str) -> list[Path]:
    base = Path(data_dir) if data_dir else Path(".")
    return [base / n.strip() if not Path(n.strip()).is_absolute() else Path(n.strip())
            for n in (names or default).split(",")]


def load_pairs(cfg: PretrainConfig):
    """(training pairs, held-out pairs or None, image source) of the settings."""
    from .images import FolderImages, index_images
    from .pairs import lxmert_pairs, synthetic_pairs

    sources = [x.strip() for x in cfg.sources.split(",") if x.strip()] if cfg.sources else None
    if cfg.data == "synthetic":
        train = synthetic_pairs(cfg.data_dir, "train", sources)
        val = synthetic_pairs(cfg.data_dir, "val", sources) if cfg.val_files != "none" else None
        index = {**train.image_index(), **(val.image_index() if val is not None else {})}
    else:
        if not cfg.images and not cfg.shards and not cfg.features:
            raise ConfigMismatchError("--data lxmert needs --images DIR (image files), --shards DIR or --features STORE")
        index = index_images(cfg.images) if cfg.images else None
        train = lxmert_pairs(_files(cfg.data_dir, cfg.train_files, "mscoco_train.json"), sources=sources, images=index)
        val = None if cfg.val_files == "none" else lxmert_pairs(
            _files(cfg.data_dir, cfg.val_files, "mscoco_minival.json"), sources=sources, images=index)
    if cfg.features:
        from .cells import StoreCells, cell_store_path

        images = StoreCells(cell_store_path(cfg.features, cfg.data_dir if cfg.data == "synthetic" else None))
    elif cfg.shards:
        from .shards import ShardImages

        images = ShardImages(cfg.shards)
    else:
        images = FolderImages(index, cfg.canvas)
    return train, val, images


def load_answers(run: RunDir, cfg: PretrainConfig, pairs, info: DistInfo):
    """The answer table: the run's ``answers.json`` when resuming, ``--ans2label``, or counted (rank 0
    writes it); empty when the training pairs hold no question (captions only: no QA head, no QA loss)."""
    from vqa.answers import AnswerVocab

    path = run.path / ANSWERS_FILE
    if info.is_main and not path.exists():
        if cfg.ans2label:
            vocab = AnswerVocab.from_file(cfg.ans2label)
        else:
            answers = pairs.qa_answers()
            vocab = AnswerVocab.from_counts(answers, cfg.min_answer_count) if answers else AnswerVocab([])
        run.path.mkdir(parents=True, exist_ok=True)
        vocab.save(path)
    barrier(info)
    return AnswerVocab.from_file(path)


def load_tokenizer(run: RunDir, cfg: PretrainConfig, pairs, info: DistInfo):
    """WordPiece: ``--vocab``, the run's ``vocab.txt``, or trained on the training text by rank 0."""
    from .wordpiece import load_or_train

    if info.is_main:
        tok = load_or_train(run.path, pairs.texts, cfg.vocab, vocab_size=cfg.vocab_size)
    barrier(info)
    if not info.is_main:
        tok = load_or_train(run.path, None, cfg.vocab)
    return tok


def checkpoint_state(model, optimisers, info: DistInfo) -> dict:
    """The tensors of ``latest.pt``: model, optimisers, every process's random states (collective)."""
    states = gather_to_all(rng_state(info.device), info)
    return {"model": model.state_dict(), "optimisers": optimisers.state_dict(),
            "rng": {f"rank{r}": s for r, s in enumerate(states)}}


def main(argv=None) -> dict:
    """Pre-train; returns the final held-out figures (``val``) and the last training means (``train``)."""
    from vln.cli import first_line

    cfg, given = parse_config(PretrainConfig, argv, first_line(__doc__))
    info = init_distributed(cfg.device)
    try:
        return _train(cfg, given, info)
    finally:
        shutdown(info)


def _train(cfg: PretrainConfig, given: set, info: DistInfo) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    run = RunDir(cfg.out or Path("runs") / run_name("pretrain", Path(cfg.encoder).stem, cfg.seed), fmt=FORMAT,
                 writer=info.is_main)
    cfg = run.resolve_config(cfg, given)
    per_device, accum = accumulation(cfg, info.world_size)

    # ---------------------------------------------------------------- data
    train_pairs, val_pairs, images = load_pairs(cfg)
    tokenizer = load_tokenizer(run, cfg, train_pairs, info)
    answers = load_answers(run, cfg, train_pairs, info)
    examples = PretrainExamples(train_pairs, images, tokenizer, answers, seed=cfg.seed)
    sampler = ResumableDistributedSampler(len(examples), info.world_size, info.rank, seed=cfg.seed)
    steps_per_epoch = sampler.total // cfg.batch_size
    if steps_per_epoch < 1:
        raise ConfigMismatchError(f"{len(examples)} training pairs are fewer than one global batch "
                                  f"(--batch-size {cfg.batch_size})")
    total_steps = cfg.steps or cfg.epochs * steps_per_epoch

    # ---------------------------------------------------------------- model, optimisers
    torch.manual_seed(cfg.seed)
    model = build_model(tokenizer.vocab_size, len(answers), cfg.size, None if cfg.features else cfg.encoder,
                        cfg.weights, grid_dim=getattr(images, "channels", None), dropout=cfg.dropout,
                        pad_id=tokenizer.pad_id)
    if cfg.bert_init:
        from .bert_init import load_bert_weights

        load_bert_weights(model, cfg.bert_init)
    apply_bn_policy(model, cfg.bn, cfg.freeze_backbone, info.world_size, info.device)
    model.to(info.device)
    optimisers = build_optimisers(model, cfg.epochs * steps_per_epoch, steps_per_epoch, peak_lr(cfg.encoder, cfg.lr),
                                  cfg.warmup, cfg.weight_decay, cfg.backbone_lr, cfg.backbone_momentum,
                                  backbone_weight_decay=cfg.backbone_weight_decay, max_grad_norm=cfg.max_grad_norm,
                                  freeze_backbone=cfg.freeze_backbone)
    step = 0
    if run.resuming:
        tensors, meta = run.load_latest(map_location=info.device)
        model.load_state_dict(tensors["model"])
        optimisers.load_state_dict(tensors["optimisers"])
        step = int(meta["step"])
        rng = tensors["rng"].get(f"rank{info.rank}")
        if rng is not None and meta.get("world_size") == info.world_size:
            restore_rng_state(rng, info.device)
        else:  # another number of processes: data order and masks still resume exactly (they are seeded per example)
            torch.manual_seed(cfg.seed + 1000 * (step + 1) + info.rank)
        if meta.get("global_batch") != cfg.batch_size:
            raise ConfigMismatchError(f"{run.latest_path} was trained with a global batch of {meta.get('global_batch')}")
        run.check_iterations(step, total_steps, "--steps")
    ddp = model
    if info.distributed:
        ddp = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[info.device] if info.device.type == "cuda" else None)
    run.write_params(cfg)
    model.train()

    # ---------------------------------------------------------------- held-out set
    val_loader = unigram = None
    if val_pairs is not None and info.is_main:
        val_examples = PretrainExamples(val_pairs, images, tokenizer, answers, seed=cfg.seed + 1)
        if cfg.eval_pairs and cfg.eval_pairs < len(val_examples):
            val_examples = torch.utils.data.Subset(val_examples, range(cfg.eval_pairs))
        val_loader = DataLoader(val_examples, batch_size=per_device, num_workers=cfg.workers)
        unigram = most_frequent_token(tokenizer, train_pairs.texts)
    num_cells = cfg.num_cells or None

    def run_eval(at: int, log: TrainLog | None) -> dict | None:
        if val_loader is None:
            return None
        scores = evaluate(model, val_loader, info.device, num_cells, unigram, cfg.amp, val_pairs.sources)
        if log is not None:
            log.metrics(at, {f"val/{k}": v for k, v in scores.items() if "_acc" in k})
        logger.info("step %d held-out: %s", at, "  ".join(f"{k} {v:.4f}" for k, v in scores.items()))
        return scores

    # ---------------------------------------------------------------- loop
    policy = LatestPolicy(cfg.latest_every, cfg.latest_minutes)
    loader_iter, loader_epoch, last_means, val_scores = None, None, {}, None
    log = (TrainLog(run.tb_dir, total_steps, step, cfg.log_every, cfg.progress, items_per_iter=cfg.batch_size,
                    item="pairs") if info.is_main else None)
    try:
        if log is not None and step == 0:
            log.hparams({**asdict(cfg), "world_size": info.world_size, "per_device_batch": per_device,
                         "accumulation": accum})
        while step < total_steps:
            epoch, position = divmod(step, steps_per_epoch)
            if loader_epoch != epoch:
                sampler.set_epoch(epoch, start=position * cfg.batch_size)
                examples.set_epoch(epoch)
                loader = DataLoader(examples, batch_size=per_device, sampler=sampler, num_workers=cfg.workers,
                                    pin_memory=info.device.type == "cuda", drop_last=True)
                loader_iter, loader_epoch = iter(loader), epoch
            micro = [next(loader_iter) for _ in range(accum)]
            qa_weight = 1.0 if epoch >= cfg.qa_from_epoch else 0.0
            values = train_step(ddp, model, micro, optimisers, info, qa_weight, num_cells, cfg.amp)
            step += 1
            if log is not None:
                last_means = log.step(step, values) or last_means
            if cfg.eval_every and step % cfg.eval_every == 0 and step < total_steps:
                val_scores = run_eval(step, log)
            # every rank takes part in writing (the random states are gathered): decide together
            due = all_reduce_sum([float(policy.due(step))], info)[0] > 0
            if due or step == total_steps:
                meta = {"step": step, "epoch": step // steps_per_epoch,
                        "epoch_samples": (step % steps_per_epoch) * cfg.batch_size,
                        "world_size": info.world_size, "global_batch": cfg.batch_size}
                run.save_latest(checkpoint_state(model, optimisers, info), meta)
                policy.saved(step)
        if info.is_main:
            val_scores = run_eval(step, log)
            run.save(run.path / FINAL_CHECKPOINT, {"model": model.state_dict()},
                     {"step": step, "config": asdict(cfg), "vocab_size": tokenizer.vocab_size,
                      "num_answers": len(answers), "val": val_scores})
        barrier(info)
    finally:
        if log is not None:
            log.close()
    return {"val": val_scores, "train": last_means, "step": step}
