"""Benchmark: the zero-shot probe's text encodings (every candidate answer for every question).

Three ways of scoring the same questions x answers in both modes (``prompt``: ``question: Q answer:
A``; ``no_prompt``: the answer alone), timed in the same run on the same random-weight text tower:

1. naive: per question, open_clip's tokenizer on the full texts and ``CLIP.encode_text`` on 77
   tokens (what a user writes from the open_clip README);
2. ours, uncached: :class:`vqa.zeroshot.AnswerScorer` with ``cache=False`` (memoised BPE pieces,
   batches cut to their longest text) re-encoding the answers for every question;
3. ours, cached: answers encoded once, prompts once per distinct question text.

Prints questions/s of each, the cache's gain (3 vs 2) and the whole gain (3 vs 1), and checks that
all three pick the same answers. The text tower is RN50x4's (width 640, 10 heads, context 77) with
``--layers`` blocks (12 in the real model; fewer keep the CPU run short: the ratios hardly depend
on depth); the image tower is irrelevant here (random unit vectors stand for image embeddings).

Run: ``python bench/bench_zeroshot.py [--answers 3129 --layers 12 --device cuda]``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from features.clip_text import ClipModel  # noqa: E402
from features.registry import get_spec  # noqa: E402
from features.weights import WeightsSource  # noqa: E402
from vqa.zeroshot import PROMPT, AnswerScorer  # noqa: E402

WORDS = ("red blue green white black yellow brown grey sofa chair table bed lamp shelf plant kitchen bathroom "
         "bedroom left right front behind wooden large small two three four yes no").split()
QUESTIONS = ("what color is the sofa?", "how many chairs are there?", "is there a lamp on the table?",
             "what room is this?", "which side is the plant on?", "what is on the shelf?",
             "what kind of floor is it?", "is the bed made?")


def answers(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct answers of one to three words (VQA answers are short)."""
    g = torch.Generator().manual_seed(seed)
    out, seen = [], set()
    while len(out) < n:
        k = int(torch.randint(1, 4, (1,), generator=g))
        a = " ".join(WORDS[int(i)] for i in torch.randint(0, len(WORDS), (k,), generator=g))
        if a not in seen:
            seen.add(a)
            out.append(a)
    return out


def text_clip(layers: int, device: str) -> ClipModel:
    """A random-weight CLIP with RN50x4's text tower (``layers`` blocks) and a tiny image tower."""
    import dataclasses

    import open_clip

    from features.encoders import quiet_random_init

    spec = get_spec("clip_r50x4")
    text = dict(open_clip.get_model_config(spec.architecture)["text_cfg"], layers=layers)
    spec = dataclasses.replace(spec, input_size=(64, 64), render_size=(64, 64), options={
        "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None}, "text_cfg": text})
    torch.manual_seed(0)
    with quiet_random_init():
        model = open_clip.create_model(spec.architecture, pretrained=None, **spec.options).eval().requires_grad_(False)
    return ClipModel(spec, model, WeightsSource(None, "random", None)).to(device)


@torch.inference_mode()
def naive(clip: ClipModel, images: torch.Tensor, questions: list[str], cands: list[str], batch: int) -> dict:
    """Per question: tokenize the full texts, ``encode_text`` on the full context, arg-max."""
    tok, out = clip.tokens.tokenizer, {"prompt": [], "no_prompt": []}
    for image, q in zip(images, questions):
        for mode, texts in (("prompt", [PROMPT.format(question=q, answer=a) for a in cands]), ("no_prompt", cands)):
            tokens = tok(texts)
            emb = torch.cat([clip.clip.encode_text(tokens[i:i + batch].to(clip.device), normalize=True)
                             for i in range(0, len(texts), batch)])
            out[mode].append(int((emb @ image).argmax()))
    return out


def ours(clip: ClipModel, images: torch.Tensor, questions: list[str], cands: list[str], batch: int,
         cache: bool) -> dict:
    scorer = AnswerScorer(clip, cands, batch_size=batch, cache=cache)
    return {mode: scorer.scores(images, questions, mode).argmax(1).tolist() for mode in ("prompt", "no_prompt")}


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return out, time.perf_counter() - t


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--answers", type=int, default=64, help="candidate answers (3,129 for VQA v2)")
    ap.add_argument("--questions", type=int, default=6, help="questions scored")
    ap.add_argument("--distinct", type=int, default=3, help="distinct question texts among them")
    ap.add_argument("--layers", type=int, default=1, help="text transformer blocks (RN50x4: 12)")
    ap.add_argument("--batch", type=int, default=256, help="texts per text-tower batch")
    ap.add_argument("--device", default="cpu", help="torch device")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    clip = text_clip(args.layers, args.device)
    cands = answers(args.answers)
    questions = [QUESTIONS[i % args.distinct % len(QUESTIONS)] for i in range(args.questions)]
    images = torch.nn.functional.normalize(torch.randn(args.questions, clip.spec.pooled_dim,
                                                       generator=torch.Generator().manual_seed(1)), dim=-1).to(args.device)
    clip.encode_texts(cands[:8])  # warm-up (BPE caches, kernels)
    base, t_naive = timed(naive, clip, images, questions, cands, args.batch)
    uncached, t_uncached = timed(ours, clip, images, questions, cands, args.batch, False)
    cached, t_cached = timed(ours, clip, images, questions, cands, args.batch, True)
    same = base == uncached == cached
    n = args.questions
    print(f"bench_zeroshot: {n} questions ({args.distinct} distinct texts) x {args.answers} answers x 2 modes, "
          f"RN50x4 text tower with {args.layers} blocks, {args.device}")
    print(f"  naive (tokenize + encode_text at 77 tokens, per question): {n / t_naive:.2f} questions/s ({t_naive:.1f} s)")
    print(f"  ours uncached (re-encoding the answers per question):     {n / t_uncached:.2f} questions/s ({t_uncached:.1f} s)")
    print(f"  ours cached (answers once, prompts once per text):         {n / t_cached:.2f} questions/s ({t_cached:.1f} s)")
    print(f"  cache gain x{t_uncached / t_cached:.2f}; whole gain vs naive x{t_naive / t_cached:.2f}; "
          f"same answers in all three: {same}")
    if not same:
        raise SystemExit("bench_zeroshot: the three ways disagree")
    return {"naive_s": t_naive, "uncached_s": t_uncached, "cached_s": t_cached}


if __name__ == "__main__":
    main()
