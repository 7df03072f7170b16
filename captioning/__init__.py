"""Image captioning on CLIP grid features (CLIP-ViL §3.2): a Transformer captioner trained with
cross-entropy then self-critical sequence training, scored with the COCO caption metrics.

Modules::

    captioning.cider     vectorised CIDEr-D (the SCST reward; pycocoevalcap's CIDEr with its df)
    captioning.metrics   pycocoevalcap (PTB tokenizer, BLEU, METEOR, ROUGE-L, CIDEr, SPICE with jars)

Importing the package imports nothing heavy.
"""
