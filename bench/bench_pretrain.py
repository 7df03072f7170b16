"""CLIP-ViLp pre-training pairs/s through the input pipeline against the same steps on batches
already in memory (so an input-bound pipeline shows as a ratio above 1).

Both sides run :func:`pretraining.step.train_step` (forward over text + cells with the backbone,
MLM + ITM + QA losses, backward, AdamW + SGD) on the same model and the same examples of the
synthetic corpus. The pipeline side reads them as a run does: ``DataLoader`` workers decoding and
resizing the JPEGs into the canvas, tokenising, masking and drawing negatives
(:class:`pretraining.examples.PretrainExamples`); the in-memory side replays those batches, collated
beforehand. Sides alternate over rounds; the ratio is in-memory pairs/s over pipeline pairs/s (the
median of per-round ratios). CPU default: Transformer ``small``, the learning check's small CLIP
ResNet, 192 x 320 images, batch 16; on a GPU: BERT-base + CLIP RN50 (random weights) at 384 x 640,
batch 64, bf16 autocast.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(run_steps, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    run_steps()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0


def main(argv=None) -> dict:
    from torch.utils.data import DataLoader

    from pretraining.examples import PretrainExamples
    from pretraining.images import FolderImages
    from pretraining.learning_check import write_cpu_backbone_spec
    from pretraining.model import build_model
    from pretraining.optim import apply_bn_policy, build_optimisers
    from pretraining.pairs import synthetic_pairs
    from pretraining.step import train_step
    from pretraining.wordpiece import WordPiece
    from training.distributed import DistInfo
    from vqa.answers import AnswerVocab

    gpu = torch.cuda.is_available()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if gpu else "cpu")
    p.add_argument("--encoder", default=None, help="backbone (default: clip_r50 on a GPU, the small CPU ResNet on a CPU)")
    p.add_argument("--size", default=None, help="Transformer size (default: base on a GPU, small on a CPU)")
    p.add_argument("--canvas", default=None, help="HxW (default: 384x640 on a GPU, 192x320 on a CPU)")
    p.add_argument("--batch", type=int, default=None, help="pairs per step (default: 64 on a GPU, 16 on a CPU)")
    p.add_argument("--steps", type=int, default=None, help="steps per side and round (default: 20 GPU, 3 CPU)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--workers", type=int, default=None, help="data-loader workers (default: 8 GPU, 1 CPU)")
    p.add_argument("--data-dir", default=None, help="synthetic corpus (default: built on first use)")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    size, canvas = args.size or ("base" if on_gpu else "small"), args.canvas or ("384x640" if on_gpu else "192x320")
    batch, steps = args.batch or (64 if on_gpu else 16), args.steps or (20 if on_gpu else 3)
    workers = args.workers if args.workers is not None else (8 if on_gpu else 1)
    if not on_gpu:
        torch.set_num_threads(1)
    encoder = args.encoder or ("clip_r50" if on_gpu else str(write_cpu_backbone_spec(tempfile.mkdtemp())))

    pairs = synthetic_pairs(args.data_dir, "train")
    tokenizer = WordPiece.train(pairs.texts, vocab_size=1000)
    answers = AnswerVocab.from_counts(pairs.qa_answers(), 3)
    examples = PretrainExamples(pairs, FolderImages(pairs.image_index(), canvas), tokenizer, answers)
    torch.manual_seed(0)
    model = build_model(tokenizer.vocab_size, len(answers), size, encoder, "random")
    apply_bn_policy(model, "frozen")
    model.to(device).train()
    opt = build_optimisers(model, 10_000, 1_000, 1e-4)
    info = DistInfo(0, 1, 0, device)
    loader = DataLoader(examples, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                        pin_memory=on_gpu, persistent_workers=workers > 0,
                        generator=torch.Generator().manual_seed(0))
    stream = iter(loader)

    def next_batch():
        nonlocal stream
        try:
            return next(stream)
        except StopIteration:
            stream = iter(loader)
            return next(stream)

    memory = [next_batch() for _ in range(steps)]
    if on_gpu:
        memory = [{k: v.to(device) for k, v in b.items()} for b in memory]

    def pipeline():
        for _ in range(steps):
            train_step(model, model, [next_batch()], opt, info, 1.0, 100)

    def in_memory():
        for b in memory:
            train_step(model, model, [b], opt, info, 1.0, 100)

    in_memory()  # warm-up (allocator, autocast caches)
    rates, ratios = {"pipeline": [], "memory": []}, []
    for r in range(args.rounds):
        order = [("pipeline", pipeline), ("memory", in_memory)]
        t = dict((name, timed(fn, device)) for name, fn in (order if r % 2 == 0 else order[::-1]))
        for name in t:
            rates[name].append(steps * batch / t[name])
        ratios.append(t["pipeline"] / t["memory"])
    out = {"device": str(device), "size": size, "encoder": Path(encoder).stem, "canvas": canvas, "batch": batch,
           "workers": workers, "pipeline_pairs_per_s": statistics.median(rates["pipeline"]),
           "memory_pairs_per_s": statistics.median(rates["memory"]), "ratio_median": statistics.median(ratios),
           "ratio_range": [min(ratios), max(ratios)]}
    print(f"bench_pretrain: {out['pipeline_pairs_per_s']:.2f} pairs/s through the pipeline vs "
          f"{out['memory_pairs_per_s']:.2f} from memory: x{out['ratio_median']:.2f} "
          f"(rounds x{min(ratios):.2f}-{max(ratios):.2f}); {out}")
    return out


if __name__ == "__main__":
    main()
