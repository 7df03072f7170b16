"""Pre-train on the synthetic corpus on a CPU; compare held-out ITM / MLM accuracy with chance and the unigram baseline.

Does CLIP-ViLp pre-training learn? One pre-training run on the synthetic corpus, on a CPU.

The run's own held-out evaluation (the corpus's ``val`` houses, never seen in training) gives, in
the same run: image-text matching accuracy (chance: 50%, half the sentences belong to another
image), masked-token accuracy, and the unigram-frequency baseline on the same masked positions
(always predicting the most frequent training token). Learning means ITM well above 50% and MLM
above the baseline. ITM is also reported by the source of the sentence shown: a caption belongs to
few images, while many questions fit any image ("how many objects are in the picture?").

Budget: from scratch, ITM stays at chance for the first ~1,500 steps of 32 pairs while MLM learns
(MLM's gradient crowds it out: without the MLM loss ITM rises within 400 steps), then rises; the
default 30 epochs (4,680 steps, ~40 min on one idle core) get past that. ``-- --sources mscoco``
trains on the captions alone (ITM rises sooner and higher; no QA).

Visual input (CPU budget): by default the corpus's ``synthetic_semantic_grid`` cells (per cell, the
shares of the classes and colours covering it: what a trained backbone should extract), read
through ``--features`` (no backbone), as the VQA learning check does. ``--backbone`` trains the
image path instead: a small CLIP ModifiedResNet (:func:`cpu_backbone_spec`: width 16, one
bottleneck per stage, 512-channel cells at stride 32) from random weights, asked for by name
(``--weights random``), on 96 x 128 images, with BatchNorm on batch statistics (``--bn train``): a
random trunk's initial running statistics (mean 0, variance 1) shrink its cells to ~1e-4 and make
them nearly identical across images (mean cosine 0.76 between cells of 16 images, against 0.04
with batch statistics). No CLIP weights can be downloaded here and an RN50 is too slow to train on
a shared CPU; with real weights the same run is ``--encoder clip_r50 --weights RN50.pt``.
"""
from __future__ import annotations

import json
from pathlib import Path

from vln.cli import script_parser

#: A small CLIP ModifiedResNet (open_clip's RN50 config overridden), random weights.
CPU_BACKBONE_OPTIONS = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 64, "layers": [1, 1, 1, 1], "width": 16, "patch_size": None},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 64, "heads": 1, "layers": 1},
}
#: The CPU budget: Transformer ``small``, batch 32, QA from the start, the whole held-out split evaluated.
CPU_BUDGET = ["--size", "small", "--batch-size", "32", "--lr", "5e-4", "--warmup", "0.05", "--qa-from-epoch", "0",
              "--vocab-size", "1000", "--min-answer-count", "3", "--threads", "1", "--workers", "1",
              "--eval-pairs", "0", "--log-every", "20"]
#: The visual input: the semantic grid cells (default) or the small CLIP ResNet trained from random weights.
SEMANTIC_CELLS = ["--features", "synthetic_semantic_grid"]
BACKBONE_ON_IMAGES = ["--canvas", "96x128", "--weights", "random", "--bn", "train"]


def cpu_backbone_spec(name: str = "clip_rn_cpu"):
    """The :class:`features.registry.EncoderSpec` of the small CLIP ResNet (512-channel grid)."""
    from features.registry import CLIP_MEAN, CLIP_STD, R2R_VFOV, EncoderSpec

    return EncoderSpec(name=name, family="clip", architecture="RN50-quickgelu", weights_tag=None,
                       weights_file=None, input_size=(64, 64), render_size=(64, 64), render_vfov=R2R_VFOV,
                       mean=CLIP_MEAN, std=CLIP_STD, pooled_dim=64, grid_dim=512, grid_stride=32, l2_normalize=True,
                       builder="features.encoders:build_open_clip", options=json.loads(json.dumps(CPU_BACKBONE_OPTIONS)))


def write_cpu_backbone_spec(folder: str | Path) -> Path:
    """Write :func:`cpu_backbone_spec` as ``<folder>/clip_rn_cpu.json`` (usable as ``--encoder``)."""
    from vln.io_utils import atomic_write_json

    path = Path(folder) / "clip_rn_cpu.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, cpu_backbone_spec().to_dict(), indent=1)
    return path


def table(val: dict) -> str:
    """The Markdown table of a run's held-out figures."""
    return "\n".join([
        "| held-out (val houses) | accuracy | chance / baseline |", "|---|---|---|",
        f"| image-text matching | {100 * val['itm_acc']:.1f}% | 50% |",
        *(f"| image-text matching, {k.split('/', 1)[1]} sentences shown | {100 * v:.1f}% | 50% |"
          for k, v in val.items() if k.startswith("itm_acc/")),
        f"| masked tokens | {100 * val['mlm_acc']:.1f}% | {100 * val['mlm_unigram_acc']:.1f}% (most frequent token) |",
        f"| QA (answer table) | {100 * val['qa_acc']:.1f}% | |",
        f"| pairs / masked tokens | {val['pairs']} / {val['masked']} | |"])


def main(argv=None) -> dict:
    """Run the check; flags after ``--`` go to ``scripts/pretrain.py`` after the CPU budget."""
    from .train import main as pretrain

    p = script_parser(__doc__)
    p.add_argument("--out", required=True, help="run folder (holds the backbone spec and scores.json too)")
    p.add_argument("--epochs", type=int, default=30, help="epochs over the training pairs (the schedule spans them; "
                   "ITM leaves chance after about 10)")
    p.add_argument("--data-dir", default=None, help="synthetic corpus folder (default: built on first use)")
    p.add_argument("--backbone", action="store_true", help="train the small CLIP ResNet on images (random weights) "
                   "instead of reading the semantic grid cells")
    p.add_argument("pretrain_args", nargs="*", help="more scripts/pretrain.py flags (after --)")
    args = p.parse_args(argv)
    visual = ["--encoder", str(write_cpu_backbone_spec(args.out)), *BACKBONE_ON_IMAGES] if args.backbone else SEMANTIC_CELLS
    data = ["--data-dir", args.data_dir] if args.data_dir else []
    result = pretrain(["--out", str(Path(args.out) / "run"), "--epochs", str(args.epochs), *data, *CPU_BUDGET, *visual,
                       *args.pretrain_args])
    (Path(args.out) / "scores.json").write_text(json.dumps(result, indent=1))
    print(table(result["val"]))
    return result
