"""Train MCAN or Pythia for VQA on image grid features (VQA v2, GQA or the synthetic corpus).

Reads top to bottom: settings, data (questions, vocabularies, grid store), model, optimiser and
recipe, the loop (BCE-with-logits against the soft targets), validation with the official
accuracy, checkpoints. A run folder holds ``params.json``, ``latest.pt`` (exact resume: weights,
optimiser, random states; the batch order is a function of (seed, epoch)), ``best_val.pt``,
``answers.json`` (ans2label), ``questions_vocab.json`` and ``tb/`` (tags ``train/loss``,
``val/overall``, ``val/<answer type>``, ``perf/iters_per_s``).

Loss reduction follows the recipe's source: MCAN sums the BCE over answers and the batch
(``BCELoss(reduction="sum")``); Pythia (MMF's ``logit_bce``) averages over the batch and sums
over answers.
"""
from __future__ import annotations

import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from training.checkpoint import restore_rng_state, rng_state
from training.config import parse_config, setting
from training.logging import TrainLog
from training.run import LatestPolicy, RunDir, run_name

from .answers import AnswerVocab
from .dataset import VQADataset, collate, shuffled_images
from .predict import autocast, model_inputs, predict, results, score
from .recipes import RECIPES
from .sources import DATASETS, DEFAULT_SPLITS, SettingError, grid_store_path, load_split
from .tokens import QuestionTokenizer

logger = logging.getLogger(__name__)
FORMAT = "clipvil-vqa-v1"
ANSWERS_FILE, WORDS_FILE = "answers.json", "questions_vocab.json"


@dataclass
class VQAConfig:
    model: str = setting("mcan", "VQA model", choices=("mcan", "pythia"))
    size: str = setting("small", "MCAN size: small (hidden 512) or large (hidden 1024, FF 4096)", choices=("small", "large"))
    features: str = setting("synthetic_semantic_grid", "image grid store folder, or synthetic_semantic_grid")
    dataset: str = setting("synthetic", "question set", choices=DATASETS)
    data_dir: str | None = setting(None, "folder of the question files (default for synthetic: the corpus, built on first use)")
    train_split: str | None = setting(None, "training split (default: train2014 for vqa2/synthetic, train for gqa)")
    val_split: str | None = setting(None, "validation split (default: val2014 / val; 'none' for no validation)")
    out: str | None = setting(None, "run folder (default: runs/vqa__<model>__<features>__<seed>__<time>); an existing one resumes")
    recipe: str | None = setting(None, "optimiser and schedule (default: the model's own)", choices=("mcan", "pythia"))
    epochs: int = setting(0, "training epochs (0: the recipe's)", may_change_on_resume=True)
    batch_size: int = setting(0, "questions per batch (0: the recipe's)")
    lr: float = setting(0.0, "base learning rate (0: the recipe's)")
    min_answer_count: int = setting(9, "answers seen this often in training form the vocabulary")
    ans2label: str | None = setting(None, "answer vocabulary file ({answer: label}) (default: none, answers are counted)")
    exact_scores: bool = setting(False, "train against the exact leave-one-out VQA score instead of 0.3/0.6/0.9/1")
    glove: str | None = setting(None, "GloVe text file initialising the word embeddings (default: none, learned from scratch)")
    hidden: int = setting(0, "override the model's hidden size (0: the paper's)")
    lstm: int = setting(0, "Pythia: override the question LSTM size (0: the paper's 1024)")
    layers: int = setting(0, "MCAN: override the number of encoder-decoder layers (0: 6)")
    ff: int = setting(0, "MCAN: override the feed-forward size (0: the size's)")
    heads: int = setting(0, "MCAN: override the attention heads (0: 8)")
    pool: int = setting(1, "average k x k blocks of grid cells first (CPU budgets; 1: the grid as stored)")
    dropout: float = setting(0.1, "dropout")
    visual: str = setting("real", "controls: real grids, zero (question only), shuffle (another image's grid)",
                          choices=("real", "zero", "shuffle"))
    positions: bool = setting(True, "add each cell's (y, x) centre to its features")
    seed: int = setting(0, "random seed (initialisation, batch order, dropout)")
    device: str = setting("auto", "cpu, cuda or auto", may_change_on_resume=True)
    threads: int = setting(0, "torch CPU threads (0: torch's default; 1 is fastest on a loaded machine)", may_change_on_resume=True)
    workers: int = setting(0, "data loader worker processes", may_change_on_resume=True)
    eval_every: int = setting(1, "epochs between validations (0: only at the end)", may_change_on_resume=True)
    latest_every: int = setting(500, "iterations between latest.pt writes (0: off)", may_change_on_resume=True)
    latest_minutes: float = setting(10.0, "minutes between latest.pt writes (0: off)", may_change_on_resume=True)
    log_every: int = setting(50, "iterations between logged losses", may_change_on_resume=True)
    progress: bool = setting(True, "show a progress bar", may_change_on_resume=True)


def read_glove(path: str, words: list[str], dim: int) -> torch.Tensor:
    """(len(words), dim) embedding rows from a GloVe text file (``word v1 .. vdim`` lines); words
    missing from the file keep a N(0, 0.3) row (seeded by the caller's torch state), PAD is zero."""
    from vln.errors import DataFormatError

    index = {w: i for i, w in enumerate(words)}
    out = torch.randn(len(words), dim) * 0.3
    out[0] = 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            word, *vals = line.rstrip().split(" ")
            if word in index:
                if len(vals) != dim:
                    raise DataFormatError(path, f"line {n}", word, f"has {len(vals)} values, expected {dim}")
                out[index[word]] = torch.tensor([float(v) for v in vals])
    return out


def build_model(cfg: VQAConfig, num_words: int, num_answers: int, grid_dim: int, words=None) -> torch.nn.Module:
    """The registered model with the config's overrides."""
    from .models import MODELS

    options = {"dropout": cfg.dropout}
    if cfg.model == "mcan":
        options["size"] = cfg.size
        if cfg.layers:
            options["layers"] = cfg.layers
        if cfg.ff:
            options["ff"] = cfg.ff
        if cfg.heads:
            options["heads"] = cfg.heads
        if cfg.hidden:
            options.update(hidden=cfg.hidden, flat_out=2 * cfg.hidden)
    else:
        if cfg.hidden:
            options["hidden"] = cfg.hidden
        if cfg.lstm:
            options["lstm"] = cfg.lstm
    if cfg.glove:
        options["glove"] = read_glove(cfg.glove, words, 300)
    return MODELS.get(cfg.model)(num_words=num_words, num_answers=num_answers, grid_dim=grid_dim, **options)


def resolve_device(name: str) -> torch.device:
    return torch.device("cuda" if name == "auto" and torch.cuda.is_available() else ("cpu" if name == "auto" else name))


def vocabularies(cfg: VQAConfig, run: RunDir, train) -> tuple[QuestionTokenizer, AnswerVocab]:
    """Saved vocabularies of a resumed run, else built from the training split (and written)."""
    from .data import train_answers

    if (run.path / ANSWERS_FILE).exists() and (run.path / WORDS_FILE).exists():
        return QuestionTokenizer.load(run.path / WORDS_FILE), AnswerVocab.from_file(run.path / ANSWERS_FILE)
    answers = (AnswerVocab.from_file(cfg.ans2label) if cfg.ans2label
               else AnswerVocab.from_counts(train_answers(train), cfg.min_answer_count))
    tokenizer = QuestionTokenizer.build(ex.question for ex in train)
    run.path.mkdir(parents=True, exist_ok=True)
    answers.save(run.path / ANSWERS_FILE)
    tokenizer.save(run.path / WORDS_FILE)
    return tokenizer, answers


def bce_loss(logits: torch.Tensor, target: torch.Tensor, reduction: str) -> torch.Tensor:
    """BCE-with-logits summed over answers; over the batch summed (``sum``, MCAN) or averaged (``mean``, Pythia)."""
    loss = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="sum")
    return loss if reduction == "sum" else loss / logits.shape[0]


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The example order of an epoch: a permutation that depends on (seed, epoch) only."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    return torch.randperm(n, generator=g).tolist()


def main(argv=None) -> dict:
    """Train; returns ``{"run": RunDir, "iteration": int, "scores": last validation scores, "model": module}``."""
    cfg, given = parse_config(VQAConfig, argv, __doc__.splitlines()[0])
    run = RunDir(cfg.out or Path("runs") / run_name("vqa", cfg.model, Path(cfg.features).name, cfg.seed), fmt=FORMAT)
    cfg = run.resolve_config(cfg, given)
    recipe = RECIPES.get(cfg.recipe or cfg.model)
    epochs, batch_size, base_lr = cfg.epochs or recipe.epochs, cfg.batch_size or recipe.batch_size, cfg.lr or recipe.lr
    loss_reduction = "sum" if (cfg.recipe or cfg.model) == "mcan" else "mean"
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)

    # data
    train_split, val_split = (cfg.train_split or DEFAULT_SPLITS[cfg.dataset][0]), (cfg.val_split or DEFAULT_SPLITS[cfg.dataset][1])
    train = load_split(cfg.dataset, cfg.data_dir, train_split, cfg.exact_scores)
    val = [] if val_split == "none" else load_split(cfg.dataset, cfg.data_dir, val_split, cfg.exact_scores)
    if val and not any(ex.labels or ex.answers for ex in val):
        raise SettingError(f"validation split {val_split!r} has no answers; pass --val-split none or an annotated split")
    from features.image_store import ImageGridStore

    store = ImageGridStore(grid_store_path(cfg.features, cfg.dataset, cfg.data_dir))
    tokenizer, answers = vocabularies(cfg, run, train)
    image_map = shuffled_images([ex.image_id for ex in train + val], cfg.seed) if cfg.visual == "shuffle" else None
    preload = cfg.dataset == "synthetic"
    train_set = VQADataset(train, store, tokenizer, answers, preload=preload, image_map=image_map, pool=cfg.pool)
    val_loader = (DataLoader(VQADataset(val, store, tokenizer, answers, preload=preload, image_map=image_map, pool=cfg.pool),
                             batch_size=batch_size, collate_fn=collate, num_workers=cfg.workers) if val else None)
    steps_per_epoch = math.ceil(len(train_set) / batch_size)
    total = epochs * steps_per_epoch

    # model, optimiser
    model = build_model(cfg, len(tokenizer), len(answers), store.meta["channels"], tokenizer.words).to(device)
    opt = recipe.make_optimizer(model.parameters(), base_lr)
    it, best = 0, -1.0
    if run.resuming:
        tensors, meta = run.load_latest()
        model.load_state_dict(tensors["model"])
        opt.load_state_dict(tensors["optimizer"])
        restore_rng_state(tensors["rng"])
        it, best = meta["iteration"], meta.get("best", -1.0)
    run.check_iterations(it // steps_per_epoch, epochs, "--epochs")
    run.write_params(cfg)
    policy = LatestPolicy(cfg.latest_every, cfg.latest_minutes)
    scores: dict = {}

    def state():
        return {"model": model.state_dict(), "optimizer": opt.state_dict(), "rng": rng_state()}

    def validate() -> dict:
        labels = predict(model, val_loader, device, cfg.visual, cfg.positions)
        return score(val, results(val, answers, labels))

    with TrainLog(run.tb_dir, total, it, cfg.log_every, cfg.progress) as log:
        if it == 0:
            log.hparams(asdict(cfg))
        order, order_epoch = [], -1
        while it < total:
            epoch, step = divmod(it, steps_per_epoch)
            if order_epoch != epoch:  # also right after a resume in the middle of an epoch
                order, order_epoch = epoch_order(len(train_set), cfg.seed, epoch), epoch
            idx = order[step * batch_size:(step + 1) * batch_size]
            batch = collate([train_set[i] for i in idx])
            for group in opt.param_groups:
                group["lr"] = base_lr * recipe.lr_factor(epoch)
            model.train()
            with autocast(device):
                logits = model(*model_inputs(batch, device, cfg.visual, cfg.positions))
            loss = bce_loss(logits, batch["target"].to(device), loss_reduction)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            it += 1
            log.step(it, {"loss": float(loss.detach())})
            end_of_epoch = it % steps_per_epoch == 0
            if val_loader is not None and end_of_epoch and (
                    it == total or (cfg.eval_every and (it // steps_per_epoch) % cfg.eval_every == 0)):
                scores = validate()
                log.metrics(it, {"val/overall": scores["overall"],
                                 **{f"val/{k.replace('/', '_')}": v for k, v in scores.get("perAnswerType", {}).items()}})
                logger.info("epoch %d  val %s", it // steps_per_epoch, scores)
                if scores["overall"] > best:
                    best = scores["overall"]
                    run.save_best("val", state(), {"iteration": it, "scores": scores})
                run.save_latest(state(), {"iteration": it, "best": best})
                policy.saved(it)
            elif policy.due(it) or it == total:
                run.save_latest(state(), {"iteration": it, "best": best})
                policy.saved(it)
    store.close()
    return {"run": run, "iteration": it, "scores": scores, "model": model, "answers": answers, "tokenizer": tokenizer}
