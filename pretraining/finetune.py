"""Fine-tune a pre-trained CLIP-ViLp on VQA, GQA or SNLI-VE, scored with each task's official metric.

Reads top to bottom: settings, the pre-training run (architecture, vocabulary, weights), task data
(:mod:`pretraining.tasks`), model and the two optimisers, resume, the loop, evaluation.

The pre-training run given by ``--init RUN/checkpoint.pt`` fixes the architecture (encoder, size,
canvas) and the WordPiece vocabulary (``RUN/vocab.txt``); its weights initialise the Transformer and
the backbone, and a new answer head (the LXMERT answer head's shape over the task's labels) is
trained from BERT's initialisation. ``--from-scratch`` keeps the architecture and vocabulary but
not the weights (the "without V&L pre-training" rows of Table 8). All grid cells are used (no
sampling), as in the paper's fine-tuning.

Optimisers (the paper's fine-tuning): AdamW for the Transformer and the head (peak 5e-5, linear
warm-up over ``--warmup`` of the steps, linear decay), SGD for the backbone (1e-3, momentum 0, weight
decay 4e-4, x0.1 from epoch 3), the global gradient norm clipped to 1 (the released fine-tuning code).

Run folder: ``params.json``, ``labels.json`` (ans2label of the head), ``latest.pt`` (model, both
optimisers and schedules, random state, step; resumes exactly), ``best_val.pt``, ``scores.json``
(every validation), ``tb/`` (``train/loss``, ``val/overall``, ``perf/examples_per_s``).
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from training.checkpoint import load_checkpoint, restore_rng_state, rng_state
from training.config import ConfigMismatchError, parse_config, setting
from training.logging import TrainLog
from training.run import LatestPolicy, RunDir, run_name
from vln.io_utils import atomic_write_json

from .optim import MAX_GRAD_NORM
from .tasks import TASKS

logger = logging.getLogger(__name__)
FORMAT = "clipvil-finetune-v1"
LABELS_FILE = "labels.json"


@dataclass
class FinetuneConfig:
    task: str = setting("vqa", "task", choices=tuple(TASKS.names()))
    init: str | None = setting(None, "pre-training checkpoint RUN/checkpoint.pt (required, no default); its run "
                               "folder gives vocab.txt")
    from_scratch: bool = setting(False, "use --init's architecture and vocabulary but not its weights (Table 8)")
    data_dir: str | None = setting(None, "folder of the task's files (default: the synthetic corpus's vqa/, gqa/, snli_ve/)")
    corpus: str | None = setting(None, "synthetic corpus folder, when no --data-dir (default: built on first use)")
    images: str | None = setting(None, "image folder (default: the synthetic corpus's images/)")
    shards: str | None = setting(None, "folder of pre-resized image shards (scripts/make_image_shards.py) (default: none, image files)")
    train_split: str | None = setting(None, "training split (default: the task's: train2014 / train / train)")
    val_split: str | None = setting(None, "validation split (default: val2014 / val / dev; 'none': no validation)")
    train_fraction: float = setting(1.0, "train on this fraction of the training examples (a seeded subset)")
    out: str | None = setting(None, "run folder (default: runs/finetune__<task>__<seed>__<time>); an existing one resumes")
    epochs: int = setting(0, "epochs (0: the task's: VQA 5, GQA 5, SNLI-VE 2)", may_change_on_resume=True)
    steps: int = setting(0, "stop after this many steps (0: all epochs)", may_change_on_resume=True)
    batch_size: int = setting(256, "examples per step")
    lr: float = setting(5e-5, "AdamW peak learning rate (Transformer and head)")
    warmup: float = setting(0.05, "fraction of the steps warming AdamW up linearly (the released VQA command's 0.05)")
    weight_decay: float = setting(0.01, "AdamW weight decay (not on biases and LayerNorms)")
    backbone_lr: float = setting(1e-3, "backbone SGD learning rate (x0.1 from epoch 3; momentum 0, weight decay 4e-4)")
    max_grad_norm: float = setting(MAX_GRAD_NORM, "clip the global gradient norm of every update to this (0: off)")
    freeze_backbone: bool = setting(False, "keep the CLIP backbone fixed")
    bn: str = setting("frozen", "backbone BatchNorm: frozen or train", choices=("frozen", "train"))
    min_answer_count: int = setting(0, "answers seen this often in training form the table (0: the task's: VQA 9, GQA 1)")
    dropout: float = setting(0.1, "Transformer dropout")
    seed: int = setting(0, "random seed (head initialisation, subset, order, dropout)")
    device: str = setting("auto", "cpu, cuda or auto", may_change_on_resume=True)
    amp: bool = setting(True, "bf16 autocast on GPUs", may_change_on_resume=True)
    threads: int = setting(0, "torch CPU threads (0: torch's default)", may_change_on_resume=True)
    workers: int = setting(2, "data-loader worker processes", may_change_on_resume=True)
    eval_every: int = setting(1, "epochs between validations (0: only at the end)", may_change_on_resume=True)
    latest_every: int = setting(500, "steps between latest.pt writes (0: off)", may_change_on_resume=True)
    latest_minutes: float = setting(10.0, "minutes between latest.pt writes (0: off)", may_change_on_resume=True)
    log_every: int = setting(20, "steps between logged losses", may_change_on_resume=True)
    progress: bool = setting(True, "show a progress bar", may_change_on_resume=True)


class FinetuneExamples(Dataset):
    """Task examples with their images: item -> ``index``, ``input_ids`` / ``attention_mask`` (L,),
    ``images`` (3, H, W) uint8, ``image_sizes`` (2,), ``target`` (A,) float32 label scores."""

    def __init__(self, examples, images, tokenizer, table):
        missing = sorted({ex.image_id for ex in examples if ex.image_id not in images})
        if missing:
            raise FileNotFoundError(f"{len(missing)} images of the task's examples are not in the image source, "
                                    f"e.g. {missing[:3]} (--images DIR or --shards DIR)")
        self.examples, self.images, self.tokenizer, self.table = examples, images, tokenizer, table

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        ex = self.examples[i]
        ids, mask = self.tokenizer.encode([ex.text])
        target = torch.zeros(len(self.table))
        for label, s in self.table.targets(ex.labels).items():
            target[label] = s
        pixels, size = self.images[ex.image_id]
        return {"index": i, "input_ids": ids[0], "attention_mask": mask[0], "images": pixels,
                "image_sizes": torch.tensor(size, dtype=torch.long), "target": target}


def read_init(path: str | None) -> tuple[dict, dict, Path]:
    """(model tensors, pre-training settings, run folder) of a pre-training checkpoint."""
    from .train import FORMAT as PRETRAIN_FORMAT

    if not path:
        raise ConfigMismatchError("--init RUN/checkpoint.pt is required: the pre-training run gives the architecture "
                                  "and the vocabulary (add --from-scratch to leave its weights out)")
    tensors, meta = load_checkpoint(path, fmt=PRETRAIN_FORMAT)
    if "config" not in meta or "model" not in tensors:
        raise ConfigMismatchError(f"{path} is not a pre-training checkpoint.pt (no settings or model in it)")
    return tensors["model"], meta["config"], Path(path).parent


def subset(n: int, fraction: float, seed: int) -> list[int]:
    """A seeded subset of ``round(fraction * n)`` example indices (at least 1), in order."""
    if not 0 < fraction <= 1:
        raise ConfigMismatchError(f"--train-fraction must lie in (0, 1], got {fraction}")
    if fraction == 1:
        return list(range(n))
    g = torch.Generator().manual_seed(seed)
    return sorted(torch.randperm(n, generator=g)[:max(1, round(fraction * n))].tolist())


def synthetic_corpus(cfg: FinetuneConfig) -> Path:
    from vlcorpus import ensure_vl_corpus, read_corpus_meta

    if cfg.corpus is None:
        return ensure_vl_corpus()
    read_corpus_meta(cfg.corpus)
    return Path(cfg.corpus)


def task_folder(cfg: FinetuneConfig, task) -> Path:
    """``--data-dir``, or the task's folder of the synthetic corpus."""
    return Path(cfg.data_dir) if cfg.data_dir is not None else synthetic_corpus(cfg) / task.folder


def image_source(cfg: FinetuneConfig, canvas: str):
    """Shards, an image folder, or the synthetic corpus's images."""
    from .images import FolderImages, index_images

    if cfg.shards:
        from .shards import ShardImages

        return ShardImages(cfg.shards)
    if cfg.images:
        return FolderImages(index_images(cfg.images), canvas)
    if cfg.data_dir is not None:
        raise ConfigMismatchError("--data-dir needs --images DIR or --shards DIR for the images")
    return FolderImages(index_images(synthetic_corpus(cfg) / "images"), canvas)


def build_finetune_model(pre: dict, state: dict | None, vocab_size: int, num_labels: int, dropout: float, pad_id: int):
    """The pre-training architecture with a fresh answer head over ``num_labels``; ``state`` (the
    pre-trained weights) loaded into everything but that head, or None (from scratch)."""
    from .model import build_model

    model = build_model(vocab_size, num_labels, pre["size"], pre["encoder"], pre.get("weights"), dropout=dropout,
                        pad_id=pad_id)
    if state is not None:
        kept = {k: v for k, v in state.items() if not k.startswith("qa_head.")}
        missing, unexpected = model.load_state_dict(kept, strict=False)
        if unexpected or any(not k.startswith("qa_head.") for k in missing):
            raise ConfigMismatchError(f"the pre-trained weights do not fit the model: missing {missing[:4]}, "
                                      f"unexpected {unexpected[:4]}")
    return model


@torch.no_grad()
def predict(model, loader, device, amp: bool) -> dict[int, int]:
    """Example index -> arg-max label over ``loader``."""
    from .step import autocast

    was = model.training
    model.eval()
    out = {}
    for batch in loader:
        with autocast(device, amp):
            enc = model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                        images=batch["images"].to(device), image_sizes=batch["image_sizes"].to(device))
            labels = model.qa_logits(enc.pooled).argmax(1)
        out.update(zip(batch["index"].tolist(), labels.tolist()))
    model.train(was)
    return out


def main(argv=None) -> dict:
    """Fine-tune; returns ``scores`` (last validation), ``best``, ``step``, ``run`` (its folder)."""
    from vqa.answers import AnswerVocab
    from vqa.train import epoch_order, resolve_device

    from .optim import apply_bn_policy, build_optimisers
    from .step import autocast
    from .wordpiece import WordPiece

    cfg, given = parse_config(FinetuneConfig, argv, __doc__.splitlines()[0])
    task = TASKS.get(cfg.task)
    run = RunDir(cfg.out or Path("runs") / run_name("finetune", cfg.task, cfg.seed), fmt=FORMAT)
    cfg = run.resolve_config(cfg, given)
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    epochs = cfg.epochs or task.epochs

    # ---------------------------------------------------------------- pre-training run, data
    state, pre, pre_run = read_init(cfg.init)
    tokenizer = WordPiece.from_vocab_file(pre_run / "vocab.txt")
    train_split, val_split = cfg.train_split or task.splits[0], cfg.val_split or task.splits[1]
    folder = task_folder(cfg, task)
    train_all = task.load(folder, train_split)
    val = [] if val_split == "none" else task.load(folder, val_split)
    if val and not all(ex.labels or getattr(ex.record, "answers", None) for ex in val):
        raise ConfigMismatchError(f"validation split {val_split!r} has examples without labels; pass an annotated "
                                  "split or --val-split none")
    if (run.path / LABELS_FILE).exists():
        table = AnswerVocab.from_file(run.path / LABELS_FILE)
    else:  # counted on the whole training split: runs on different fractions predict over the same labels
        table = task.label_table(train_all, cfg.min_answer_count or None)
    train = [train_all[i] for i in subset(len(train_all), cfg.train_fraction, cfg.seed)]
    images = image_source(cfg, pre.get("canvas", "384x640"))
    train_set = FinetuneExamples(train, images, tokenizer, table)
    val_loader = (DataLoader(FinetuneExamples(val, images, tokenizer, table), batch_size=cfg.batch_size,
                             num_workers=cfg.workers, generator=torch.Generator()) if val else None)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = epochs * steps_per_epoch
    stop = min(total, cfg.steps) if cfg.steps else total

    # ---------------------------------------------------------------- model, optimisers
    torch.manual_seed(cfg.seed)
    model = build_finetune_model(pre, None if cfg.from_scratch else state, tokenizer.vocab_size, len(table),
                                 cfg.dropout, tokenizer.pad_id)
    apply_bn_policy(model, cfg.bn, cfg.freeze_backbone)
    model.to(device)
    optimisers = build_optimisers(model, total, steps_per_epoch, cfg.lr, cfg.warmup, cfg.weight_decay,
                                  cfg.backbone_lr, milestones=task.backbone_milestones,
                                  freeze_backbone=cfg.freeze_backbone, max_grad_norm=cfg.max_grad_norm)
    step, best, history = 0, -1.0, []
    if run.resuming:
        tensors, meta = run.load_latest(map_location=device)
        model.load_state_dict(tensors["model"])
        optimisers.load_state_dict(tensors["optimisers"])
        restore_rng_state(tensors["rng"], device)
        step, best, history = int(meta["step"]), float(meta["best"]), list(meta["history"])
    run.check_iterations(step // steps_per_epoch, epochs, "--epochs")
    run.write_params(cfg)
    table.save(run.path / LABELS_FILE)
    model.train()

    def state_now() -> dict:
        return {"model": model.state_dict(), "optimisers": optimisers.state_dict(), "rng": rng_state(device)}

    def validate(at: int) -> dict:
        labels = predict(model, val_loader, device, cfg.amp)
        scores = task.score(val, [table.answers[labels[i]] for i in range(len(val))])
        history.append({"step": at, "epoch": at / steps_per_epoch, **scores})
        atomic_write_json(run.path / "scores.json", history, indent=1)
        return scores

    # ---------------------------------------------------------------- loop
    policy = LatestPolicy(cfg.latest_every, cfg.latest_minutes)
    scores = history[-1] if history else {}
    with TrainLog(run.tb_dir, stop, step, cfg.log_every, cfg.progress, items_per_iter=cfg.batch_size,
                  item="examples") as log:
        if step == 0:
            log.hparams({**asdict(cfg), "pretraining": pre, "labels": len(table), "train_examples": len(train)})
        batches = None
        while step < stop:
            epoch, position = divmod(step, steps_per_epoch)
            if batches is None or position == 0:  # a new epoch, or the first one after a resume
                order = epoch_order(len(train_set), cfg.seed, epoch)
                plan = [order[i:i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)][position:]
                # its own generator: starting a loader must not draw from the global one (dropout's), or a
                # resumed run would see other dropout masks than an uninterrupted one
                batches = iter(DataLoader(train_set, batch_sampler=plan, num_workers=cfg.workers,
                                          pin_memory=device.type == "cuda",
                                          generator=torch.Generator().manual_seed(cfg.seed * 1000 + epoch)))
            batch = next(batches)
            with autocast(device, cfg.amp):
                enc = model(batch["input_ids"].to(device), batch["attention_mask"].to(device),
                            images=batch["images"].to(device), image_sizes=batch["image_sizes"].to(device))
                loss = task.loss(model.qa_logits(enc.pooled), batch["target"].to(device))
            loss.backward()
            grad_norm = optimisers.step()
            step += 1
            log.step(step, {"loss": float(loss.detach()), "grad_norm": grad_norm, **optimisers.lrs()})
            end_of_epoch = step % steps_per_epoch == 0 or step == stop
            due = step == stop or (cfg.eval_every and (step // steps_per_epoch) % cfg.eval_every == 0)
            if end_of_epoch and due and val_loader is not None:
                scores = validate(step)
                log.metrics(step, {"val/overall": scores["overall"]})
                logger.info("step %d (epoch %.2f) %s %s", step, step / steps_per_epoch, val_split, scores)
                if scores["overall"] > best:
                    best = scores["overall"]
                    run.save_best("val", {"model": model.state_dict()}, {"step": step, "scores": scores})
            if end_of_epoch or policy.due(step):
                run.save_latest(state_now(), {"step": step, "best": best, "history": history})
                policy.saved(step)
    return {"scores": scores, "best": best, "step": step, "run": str(run.path), "labels": len(table),
            "train_examples": len(train)}
