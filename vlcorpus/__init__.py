"""The synthetic V&L corpus: images of the synthetic houses with VQA v2, GQA, Karpathy / COCO
captions, LXMERT and SNLI-VE files, every answer and caption true of its image by construction.

It is the embedded default of the VQA, captioning and pre-training packages, as the synthetic
world is of navigation: :func:`ensure_vl_corpus` builds it on first use (seconds), and the
readers below are what those packages load it with.

Public API:
    make_vl_corpus(world_dir, out_dir, seed=0, image_size="small", ...) -> summary dict
    ensure_vl_corpus(out_dir=None, world_dir=None, seed=0, ...) -> Path   (build once, under a lock)
    read_vqa(dir, subtype), read_gqa(dir, split), read_karpathy(path), read_coco_captions(path),
    read_lxmert(path), read_snli_ve(path)                                  (validating readers)
    read_corpus_meta(dir), read_scene_graphs(dir, folder), read_label_map(dir, folder, file_name)
"""
from __future__ import annotations

from .build import IMAGE_SIZES, SPLITS, coco_file_name, make_vl_corpus, parse_image_size
from .ensure import default_corpus_dir, ensure_vl_corpus
from .reading import read_corpus_meta, read_label_map, read_scene_graphs
from .text_formats import read_coco_captions, read_karpathy, read_lxmert, read_snli_ve
from .vqa_format import read_gqa, read_vqa

__all__ = ["make_vl_corpus", "ensure_vl_corpus", "default_corpus_dir", "SPLITS", "IMAGE_SIZES", "parse_image_size",
           "coco_file_name", "read_vqa", "read_gqa", "read_karpathy", "read_coco_captions", "read_lxmert",
           "read_snli_ve", "read_corpus_meta", "read_scene_graphs", "read_label_map"]
