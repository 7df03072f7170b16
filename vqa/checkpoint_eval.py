"""Answer a split with a trained run's checkpoint: official-format results and their scores."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from training.checkpoint import load_checkpoint
from training.config import read_params


def evaluate_checkpoint(checkpoint: str | os.PathLike, split: str, data_dir: str | None = None,
                        features: str | None = None, batch_size: int = 64, device: str = "auto") -> tuple[list[dict], dict]:
    """(results ``[{"question_id", "answer"}]``, scores) of a checkpoint on ``split``.

    Args:
        checkpoint: a run folder (its ``best_val.pt`` if present, else ``latest.pt``) or a ``.pt``
            file inside a run folder (whose ``params.json`` and vocabularies are used).
        data_dir, features: override the run's (a split stored elsewhere, another copy of the store).
    """
    from features.image_store import ImageGridStore

    from .answers import AnswerVocab
    from .dataset import VQADataset, collate, shuffled_images
    from .predict import predict, results, score
    from .sources import grid_store_path, load_split
    from .tokens import QuestionTokenizer
    from .train import ANSWERS_FILE, FORMAT, WORDS_FILE, VQAConfig, build_model, resolve_device

    path = Path(checkpoint)
    if path.is_dir():
        run_dir = path
        path = run_dir / "best_val.pt" if (run_dir / "best_val.pt").exists() else run_dir / "latest.pt"
    else:
        run_dir = path.parent
    if not (run_dir / "params.json").exists():
        raise FileNotFoundError(f"{run_dir} is not a VQA run folder (no params.json)")
    cfg = VQAConfig(**read_params(run_dir / "params.json", VQAConfig))
    data_dir = data_dir if data_dir is not None else cfg.data_dir
    tokenizer = QuestionTokenizer.load(run_dir / WORDS_FILE)
    answers = AnswerVocab.from_file(run_dir / ANSWERS_FILE)
    examples = load_split(cfg.dataset, data_dir, split)
    store = ImageGridStore(grid_store_path(features or cfg.features, cfg.dataset, data_dir))
    dev = resolve_device(device)
    model = build_model(cfg, len(tokenizer), len(answers), store.meta["channels"], tokenizer.words).to(dev)
    tensors, _ = load_checkpoint(path, fmt=FORMAT)
    model.load_state_dict(tensors["model"])
    image_map = shuffled_images([ex.image_id for ex in examples], cfg.seed) if cfg.visual == "shuffle" else None
    loader = DataLoader(VQADataset(examples, store, tokenizer, answers, image_map=image_map, pool=cfg.pool),
                        batch_size=batch_size, collate_fn=collate)
    with torch.no_grad():
        out = results(examples, answers, predict(model, loader, dev, cfg.visual, cfg.positions))
    store.close()
    return out, score(examples, out)
