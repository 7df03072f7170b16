"""CLIP-ViLp: vision-and-language pre-training with an unfrozen CLIP ResNet backbone (CLIP-ViL §4).

Modules::

    pretraining.backbone    the trainable CLIP ResNet trunk (registry encoder, BatchNorm policy)
    pretraining.model       CLIPViLp: one Transformer over [text tokens; grid cells], MLM / ITM / QA heads
    pretraining.objectives  MLM masking (15%, 80/10/10), ITM negatives (p = 0.5), the three losses
    pretraining.optim       AdamW (warm-up + linear decay) for the Transformer, SGD for the backbone
    pretraining.train       the pre-training loop (torchrun / DistributedDataParallel aware)

Importing the package imports nothing heavy.
"""
