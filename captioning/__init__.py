"""Image captioning on CLIP grid features (CLIP-ViL §3.2): a Transformer captioner trained with
cross-entropy then self-critical sequence training, scored with the COCO caption metrics.

Modules::

    captioning.data      Karpathy splits, vocabulary (> 5 occurrences), labels cut at 16 tokens
                         (arrays; cocotalk h5 with h5py), padded grid batches from an image grid store
    captioning.model     CaptionTransformer (6 + 6 layers, d 512, FF 2048, 8 heads, dropout 0.1)
    captioning.decode    greedy, sampled and batched beam decoding
    captioning.cider     vectorised CIDEr-D (the SCST reward; pycocoevalcap's CIDEr with its df)
    captioning.scst      the self-critical loss (greedy or mean-of-others baseline, reward counting the end token)
    captioning.train     CaptionConfig (paper defaults), the trainer on the run layer (best_val.pt, --start-from)
    captioning.evaluate  checkpoint decoding, best constant caption, the shuffled-image control
    captioning.learning_check  XE, then SCST and XE continuing from one checkpoint, scored against
                         the shuffled-image and best-constant-caption controls (three seeds)
    captioning.metrics   pycocoevalcap (PTB tokenizer, BLEU, METEOR, ROUGE-L, CIDEr, SPICE with jars)

Importing the package imports nothing heavy.
"""
