"""CLIP-ViLp: vision-and-language pre-training with an unfrozen CLIP ResNet backbone (CLIP-ViL §4).

Modules::

    pretraining.wordpiece   WordPiece text encoding (a user's vocab.txt or trained deterministically)
    pretraining.pairs       image-text pairs: the synthetic corpus, LXMERT-format JSON
    pretraining.images      images resized into a fixed canvas; pretraining.shards pre-resized shards
    pretraining.backbone    the trainable CLIP ResNet trunk (registry encoder, BatchNorm policy)
    pretraining.model       CLIPViLp: one Transformer over [text tokens; grid cells], MLM / ITM / QA heads
    pretraining.bert_init   --bert-init: a user's BERT weights (Hugging Face names) into the Transformer
    pretraining.objectives  MLM masking (15%, 80/10/10), ITM negatives (p = 0.5), the three losses
    pretraining.examples    a pair -> one training example (per-example seeded draws)
    pretraining.optim       AdamW (warm-up + linear decay) for the Transformer, SGD for the backbone
    pretraining.step        one optimiser step over a global batch; the held-out evaluation
    pretraining.train       the pre-training loop (torchrun / DistributedDataParallel aware)
    pretraining.learning_check   the CPU learning check on the synthetic corpus

Importing the package imports nothing heavy.
"""
