"""Train the captioner: cross-entropy with the Noam schedule, then SCST from a given epoch.

Reads top to bottom: settings, data, model, loop, evaluation, checkpoint. The batch order of an
epoch is a permutation drawn from (seed, epoch), so a run resumed from ``latest.pt`` (which holds the
weights, the optimiser, the random states and the iteration) continues exactly.

Checkpoints (training.run.RunDir): ``latest.pt`` and ``best_val.pt``, the state at the validation
with the highest val CIDEr-D so far (written when a validation beats every earlier one). Either can
be decoded by ``scripts/eval_caption.py --checkpoint`` or start another run with ``--start-from``
(its weights, optimiser and iteration; the released code's ``--start_from``): self-critical training
from a converged cross-entropy model is ``--start-from XE/best_val.pt --scst-after <its epoch>``.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from training.checkpoint import restore_rng_state, rng_state
from training.config import ConfigMismatchError, setting
from training.logging import TrainLog
from training.run import LatestPolicy, RunDir, run_name

from .cider import cider_d_text
from .data import BOS, CaptionBatcher, Vocab, build_vocab, corpus_paths, encode_captions, read_splits
from .decode import beam_search
from .model import CaptionModelConfig, CaptionTransformer
from .scst import reward_scorer, scst_step

logger = logging.getLogger(__name__)
FORMAT = "clipvil-caption-v1"


@dataclass
class CaptionConfig:
    out: str | None = setting(None, "run folder (default runs/caption__<features>__<seed>__<time>); an existing one "
                              "resumes (also when moved or copied)", may_change_on_resume=True)
    features: str = setting("synthetic_semantic_grid", "an image grid store folder, or synthetic_semantic_grid "
                            "(written for the synthetic corpus on first use)")
    dataset: str = setting("synthetic", "coco (Karpathy files in --data-dir) or synthetic (the V&L corpus)",
                           choices=("coco", "synthetic"))
    data_dir: str | None = setting(None, "folder with dataset_coco.json and captions_*.json (default: for synthetic, "
                                   "the corpus, built on first use)")
    epochs: int = setting(40, "training epochs (cross-entropy, then SCST from --scst-after)", may_change_on_resume=True)
    scst_after: int = setting(15, "epoch from which self-critical training replaces cross-entropy (-1: never)")
    scst_baseline: str = setting("greedy", "SCST baseline: the greedy caption (released code) or the mean of the "
                                 "other samples (Luo 2020)", choices=("greedy", "mean"))
    scst_samples: int = setting(5, "sampled captions per image in SCST")
    scst_lr: float = setting(5e-6, "Adam learning rate during SCST (the paper's for COCO; the small synthetic "
                             "corpus needs more, see the README)")
    scst_count_end: bool = setting(True, "the CIDEr-D reward counts the end token as a word, as the released code "
                                   "(--no-scst-count-end: words only; samples then learn to stop mid-phrase)")
    scst_temperature: float = setting(1.0, "sampling temperature of SCST (1: the model's distribution)")
    start_from: str | None = setting(None, "a fresh run starts from this captioning checkpoint (latest.pt or "
                                     "best_val.pt of another run): its weights, optimiser and iteration (a "
                                     "resumed run continues from its own latest.pt; default: a fresh start)", may_change_on_resume=True)
    lr: float = setting(5e-4, "peak learning rate of the Noam schedule (reached at the end of warm-up)")
    warmup: int = setting(20000, "Noam warm-up iterations")
    batch_images: int = setting(10, "images per batch")
    seq_per_img: int = setting(5, "captions per image in a cross-entropy batch")
    d_model: int = setting(512, "Transformer width")
    n_layers: int = setting(6, "encoder and decoder layers (each)")
    n_heads: int = setting(8, "attention heads")
    d_ff: int = setting(2048, "feed-forward width")
    dropout: float = setting(0.1, "dropout")
    max_len: int = setting(16, "captions are cut at this many tokens")
    vocab_threshold: int = setting(5, "words seen more than this many times in training form the vocabulary")
    beam: int = setting(5, "beam size of the evaluation", may_change_on_resume=True)
    eval_every: int = setting(1, "epochs between validations (0: only at the end)", may_change_on_resume=True)
    monitor_split: str | None = setting(None, "also score this split (e.g. test) at every validation: a curve to "
                                        "report, never used to choose best_val.pt (default: none)",
                                        may_change_on_resume=True)
    seed: int = setting(0, "random seed")
    device: str = setting("cpu", "torch device", may_change_on_resume=True)
    threads: int = setting(1, "CPU threads of torch (0: torch's default; several threads on a shared CPU are "
                           "much slower)", may_change_on_resume=True)
    latest_every: int = setting(500, "iterations between latest.pt writes (0: off)", may_change_on_resume=True)
    log_every: int = setting(50, "iterations between logged losses", may_change_on_resume=True)
    progress: bool = setting(True, "progress bar", may_change_on_resume=True)


def noam_lr(it: int, peak: float, warmup: int) -> float:
    """Noam's shape (linear warm-up, then 1/sqrt decay) scaled to reach ``peak`` at ``warmup``."""
    it = max(it, 1)
    return peak * min(it / warmup, math.sqrt(warmup / it))


class CaptionData:
    """Splits, vocabulary, encoded captions, training CIDEr-D scorer and the grid batcher."""

    def __init__(self, cfg: CaptionConfig, vocab: Vocab | None = None):
        data_dir = resolve_data_dir(cfg)
        self.paths = corpus_paths(data_dir)
        self.splits = read_splits(self.paths["karpathy"])
        if not self.splits["train"]:
            raise ValueError(f"{self.paths['karpathy']} holds no train/restval images")
        self.vocab = vocab or build_vocab(self.splits["train"], cfg.vocab_threshold)
        self.enc = {s: encode_captions(ims, self.vocab, cfg.max_len, self.paths["karpathy"])
                    for s, ims in self.splits.items() if ims}
        train = self.enc["train"]
        self.scorer = reward_scorer(train, len(self.vocab), cfg.max_len, cfg.scst_count_end)
        from features.image_store import ImageGridStore

        self.store = ImageGridStore(resolve_features(cfg, data_dir))
        self.batcher = CaptionBatcher(self.store)
        self.feat_dim = self.batcher.records([train.image_ids[0]])[0].grid.shape[-1]

    def references(self, split: str) -> dict[int, list[str]]:
        """Image id -> the split's reference captions as space-joined Karpathy tokens."""
        return {im["cocoid"]: [" ".join(s["tokens"]) for s in im["sentences"]] for im in self.splits[split]}

    def tensors(self, image_ids, device) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.batcher.batch(image_ids)
        return torch.from_numpy(b["grids"]).to(device), torch.from_numpy(b["mask"]).to(device)


def resolve_data_dir(cfg: CaptionConfig) -> Path:
    if cfg.dataset == "synthetic" and cfg.data_dir is None:
        from vlcorpus import ensure_vl_corpus

        return ensure_vl_corpus()
    if cfg.data_dir is None:
        raise FileNotFoundError("--dataset coco needs --data-dir with dataset_coco.json")
    return Path(cfg.data_dir)


def resolve_features(cfg: CaptionConfig, data_dir: Path) -> Path:
    if cfg.features == "synthetic_semantic_grid":
        from features.semantic_grid import ensure_semantic_grid_store

        return ensure_semantic_grid_store(data_dir, "caption", seed=cfg.seed)
    return Path(cfg.features)


def model_config(cfg: CaptionConfig, vocab_size: int, feat_dim: int) -> CaptionModelConfig:
    return CaptionModelConfig(vocab_size, feat_dim, cfg.d_model, cfg.n_layers, cfg.n_heads, cfg.d_ff, cfg.dropout,
                              cfg.max_len)


def xe_batch(data: CaptionData, idx: np.ndarray, n: int, rng: np.random.Generator, device):
    """Inputs (BOS + caption) and targets (caption + end) of ``n`` captions per image (drawn
    without replacement when the image has enough, as the released loader)."""
    enc = data.enc["train"]
    rows = []
    for i in idx:
        s, e = enc.label_start_ix[i], enc.label_end_ix[i]
        rows.extend(rng.choice(np.arange(s, e), n, replace=e - s < n))
    labels = torch.from_numpy(enc.labels[rows].astype(np.int64)).to(device)
    inputs = torch.cat([torch.full((len(rows), 1), BOS, device=device), labels], 1)
    targets = torch.cat([labels, torch.zeros((len(rows), 1), dtype=torch.long, device=device)], 1)
    lengths = torch.from_numpy(enc.label_length[rows].astype(np.int64)).to(device)
    tmask = (torch.arange(targets.shape[1], device=device)[None] <= lengths[:, None]).float()
    return inputs, targets, tmask


def xe_loss(model, grids, mask, inputs, targets, tmask, n: int) -> torch.Tensor:
    logp = model(grids, mask, inputs, seq_per_img=n)
    nll = -logp.gather(2, targets[..., None])[..., 0]
    return (nll * tmask).sum() / tmask.sum()


@torch.no_grad()
def caption_split(model, data: CaptionData, split: str, beam: int, device, batch: int = 50,
                  image_order=None) -> list[dict]:
    """COCO-format results of beam decoding a split. ``image_order``: feed each image the grid of
    another (the shuffled-images control); None = its own."""
    model.eval()
    ids = [im["cocoid"] for im in data.splits[split]]
    feed = ids if image_order is None else [ids[k] for k in image_order]
    out = []
    for k in range(0, len(ids), batch):
        grids, mask = data.tensors(feed[k:k + batch], device)
        seqs = beam_search(model, grids, mask, beam=beam)
        out.extend({"image_id": int(i), "caption": data.vocab.decode(s)} for i, s in zip(ids[k:k + batch], seqs.tolist()))
    return out


def cider_of(results: list[dict], refs: dict[int, list[str]]) -> float:
    """Corpus CIDEr (pycocoevalcap's, df from ``refs``) of COCO-format results, x1 scale."""
    scores = cider_d_text({r["image_id"]: refs[r["image_id"]] for r in results},
                          {r["image_id"]: r["caption"] for r in results})
    return float(np.mean(list(scores.values())))


def main(argv=None) -> dict:
    """Train; returns ``{"run", "iteration", "val_cider" (list of (epoch, CIDEr)), "monitor_cider" (the same for
    ``--monitor-split``), "best", "model", "data", "cfg"}``."""
    from training.config import parse_config

    cfg, given = parse_config(CaptionConfig, argv, __doc__.splitlines()[0])
    run = RunDir(cfg.out or Path("runs") / run_name("caption", Path(cfg.features).name, cfg.seed), fmt=FORMAT)
    cfg = run.resolve_config(cfg, given)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    device = torch.device(cfg.device)
    data = CaptionData(cfg)
    mcfg = model_config(cfg, len(data.vocab), data.feat_dim)
    model = CaptionTransformer(mcfg).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=0.0, betas=(0.9, 0.98), eps=1e-9)
    n_train = len(data.enc["train"].image_ids)
    per_epoch = math.ceil(n_train / cfg.batch_images)
    total = cfg.epochs * per_epoch
    it, history, best, monitor = 0, [], None, []
    if run.resuming:
        tensors, meta = run.load_latest()
        model.load_state_dict(tensors["model"])
        opt.load_state_dict(tensors["optimizer"])
        restore_rng_state(tensors["rng"], device)
        it, history, best = meta["iteration"], meta.get("val_cider", []), meta.get("best")
        monitor = meta.get("monitor_cider", [])
    elif cfg.start_from:
        it, history = start_from(cfg.start_from, model, opt, data.vocab, mcfg, device)
    if it > total:
        raise ConfigMismatchError(f"{cfg.start_from if cfg.start_from and not run.resuming else run.path} is at "
                                  f"epoch {it / per_epoch:g} already, beyond --epochs {cfg.epochs}: give more epochs")
    run.write_params(cfg)
    meta_static = {"vocab": data.vocab.words, "model_config": mcfg.to_dict(), "settings": asdict(cfg)}

    def state() -> dict:
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state(device)}

    def save():
        run.save_latest(state(), {"iteration": it, "val_cider": history, "best": best, "monitor_cider": monitor,
                                  **meta_static})
        policy.saved(it)

    policy = LatestPolicy(cfg.latest_every, 0.0)
    val_refs = data.references("val") if "val" in data.enc else None
    if cfg.monitor_split and cfg.monitor_split not in data.enc:
        raise ValueError(f"--monitor-split {cfg.monitor_split}: {data.paths['karpathy']} has no such images")
    monitor_refs = data.references(cfg.monitor_split) if cfg.monitor_split else None
    with TrainLog(run.tb_dir, total, it, cfg.log_every, cfg.progress) as log:
        if it == 0:
            log.hparams(asdict(cfg))
        while it < total:
            epoch, pos = divmod(it, per_epoch)
            perm = np.random.default_rng([cfg.seed, epoch]).permutation(n_train)
            idx = perm[pos * cfg.batch_images:(pos + 1) * cfg.batch_images]
            grids, mask = data.tensors(data.enc["train"].image_ids[idx], device)
            model.train()
            scst = 0 <= cfg.scst_after <= epoch
            if scst:
                for g in opt.param_groups:
                    g["lr"] = cfg.scst_lr
                loss, info = scst_step(model, grids, mask, idx, data.scorer, cfg.scst_samples, cfg.scst_baseline,
                                       temperature=cfg.scst_temperature, count_end=cfg.scst_count_end)
                losses = {"loss_rl": float(loss.detach()), "reward": info["reward"]}
            else:
                lr = noam_lr(it + 1, cfg.lr, cfg.warmup)
                for g in opt.param_groups:
                    g["lr"] = lr
                rng = np.random.default_rng([cfg.seed, epoch, pos])
                inputs, targets, tmask = xe_batch(data, idx, cfg.seq_per_img, rng, device)
                loss = xe_loss(model, grids, mask, inputs, targets, tmask, cfg.seq_per_img)
                losses = {"loss_ml": float(loss.detach())}
            opt.zero_grad()
            loss.backward()
            opt.step()
            it += 1
            log.step(it, losses)
            end_of_epoch = it % per_epoch == 0
            if end_of_epoch and val_refs and ((cfg.eval_every and (it // per_epoch) % cfg.eval_every == 0) or it == total):
                c = cider_of(caption_split(model, data, "val", cfg.beam, device), val_refs)
                history.append([it // per_epoch, c])
                log.metrics(it, {"val/cider": c})
                if monitor_refs:
                    m = cider_of(caption_split(model, data, cfg.monitor_split, cfg.beam, device), monitor_refs)
                    monitor.append([it // per_epoch, m])
                    log.metrics(it, {f"{cfg.monitor_split}/cider": m})
                if best is None or c > best["cider"]:
                    best = {"cider": c, "epoch": it // per_epoch, "iteration": it}
                    run.save_best("val", state(), {"iteration": it, "val_cider": history, "best": best, **meta_static})
                save()
            elif policy.due(it) or it == total:
                save()
    return {"run": run, "iteration": it, "val_cider": history, "monitor_cider": monitor, "best": best, "model": model,
            "data": data, "cfg": cfg}


def start_from(path: str | Path, model, opt, vocab: Vocab, mcfg: CaptionModelConfig, device) -> tuple[int, list]:
    """Load another run's checkpoint into a fresh run: weights, the optimiser (its learning rate is
    set again at every step) and the iteration; returns (iteration, its val CIDEr-D history).

    Raises:
        DataFormatError: the checkpoint's vocabulary or model settings differ from this run's.
    """
    from training.checkpoint import load_checkpoint
    from vln.errors import DataFormatError

    tensors, meta = load_checkpoint(path, map_location=device, fmt=FORMAT)
    if meta["vocab"] != vocab.words:
        raise DataFormatError(path, None, "vocab", f"has {len(meta['vocab'])} words, not this run's vocabulary "
                              f"of {len(vocab)} (another corpus or --vocab-threshold)")
    if meta["model_config"] != mcfg.to_dict():
        diff = {k: v for k, v in meta["model_config"].items() if mcfg.to_dict().get(k) != v}
        raise DataFormatError(path, None, "model_config", f"differs from this run's model in {diff}: give the "
                              "same --d-model, --n-layers, --n-heads, --d-ff, --max-len")
    model.load_state_dict(tensors["model"])
    opt.load_state_dict(tensors["optimizer"])
    logger.info("started from %s at iteration %d", path, meta["iteration"])
    return meta["iteration"], meta.get("val_cider", [])
