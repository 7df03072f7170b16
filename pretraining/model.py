"""CLIP-ViLp: one Transformer over [text tokens; grid cells], with the CLIP ResNet trunk inside.

Input of :meth:`CLIPViLp.forward`:

* text: ``input_ids`` (B, L) int64 WordPiece ids starting with ``[CLS]``, ``attention_mask`` (B, L)
  (1 / True for real tokens, 0 for padding);
* image: ``images`` (B, 3, H, W) RGB pixels in [0, 255] (uint8 or float; run through the trainable
  backbone, :class:`pretraining.backbone.GridBackbone`) with optional ``image_sizes`` (B, 2) int64,
  the (h, w) of each image's content in the top-left corner of a zero-padded canvas (the 384 x 640
  of the paper; padded pixels are set to 0 after normalisation and their cells masked), or precomputed
  ``cells`` (B, C, h, w) with an optional ``cell_mask`` (B, h, w) bool;
* ``num_cells``: keep that many valid cells per image, drawn at random (pre-training: 100), or all
  cells when None (fine-tuning). ``cell_seeds`` (B,) int64 makes each image's draw a function of
  its seed (so a batch split across processes draws what one process would); without it the global
  torch generator draws.

Each cell gets learned x and y position embeddings (added in the cell's channel space), then a
Linear to the hidden size, LayerNorm and dropout, as in the paper; text gets BERT's word, position
and token-type embeddings. Output: :class:`Encoded` (hidden states, the pooled ``[CLS]`` state,
which cells were used). Heads (BERT's names where BERT has one, so ``--bert-init`` maps onto them):

* :meth:`mlm_logits`: masked-LM over the vocabulary, decoder tied to the word embeddings;
* :meth:`itm_logits`: image-text matching, 2 classes (0: mismatched, 1: matched);
* :meth:`qa_logits`: the answer table (LXMERT's two-layer answer head).

Sizes (:data:`SIZES`): ``base`` = BERT-base (12 layers, hidden 768, 12 heads, FF 3072), ``small``
and ``tiny`` for CPUs and tests. Post-LayerNorm layers with exact GELU and LayerNorm eps 1e-12, as
BERT.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vln.errors import VLNError


@dataclass(frozen=True)
class TransformerSize:
    """Layers, hidden size, attention heads and feed-forward size of the single-stream Transformer."""

    layers: int
    hidden: int
    heads: int
    ff: int


SIZES = {
    "tiny": TransformerSize(layers=2, hidden=32, heads=2, ff=64),
    "small": TransformerSize(layers=4, hidden=256, heads=4, ff=1024),
    "base": TransformerSize(layers=12, hidden=768, heads=12, ff=3072),
}
#: Largest grid side the cell x / y position tables hold (RN at 1000 px: 31 columns).
MAX_GRID_SIDE = 64
#: Text position table (BERT's 512, so BERT weights load; CLIP-ViLp cuts text at 20 tokens).
MAX_TEXT_POSITIONS = 512


class ModelInputError(VLNError, ValueError):
    """Inputs the model cannot take (one-line message naming the argument)."""


@dataclass
class Encoded:
    """What :meth:`CLIPViLp.forward` returns.

    Attributes:
        hidden: (B, L + N, D) the last layer over [text; cells].
        text: (B, L, D) the text part of ``hidden``.
        pooled: (B, D) BERT's pooler (dense + tanh) over the ``[CLS]`` state.
        cell_mask: (B, N) bool, the cells attended to (False: padding or an image with fewer cells).
        cell_index: (B, N) int64, each used cell's row-major index in its image's grid.
    """

    hidden: torch.Tensor
    text: torch.Tensor
    pooled: torch.Tensor
    cell_mask: torch.Tensor
    cell_index: torch.Tensor


def sample_cells(valid: torch.Tensor, k: int | None, seeds: torch.Tensor | None = None):
    """Choose up to ``k`` valid cells per image, uniformly at random without replacement.

    Args:
        valid: (B, N) bool, valid cells of each image's flattened grid.
        k: cells to keep (None: all N, in grid order).
        seeds: (B,) int64, one generator seed per image (None: the global torch generator).

    Returns:
        index (B, K) int64 in grid order with K = min(k, N), and mask (B, K) bool: False where an
        image has fewer than K valid cells.
    """
    b, n = valid.shape
    if k is None or k >= n:
        index = torch.arange(n, device=valid.device).expand(b, n)
    else:
        if seeds is None:
            keys = torch.rand(b, n, device=valid.device)
        else:
            keys = torch.stack([torch.rand(n, generator=torch.Generator().manual_seed(int(s))) for s in seeds.tolist()])
            keys = keys.to(valid.device)
        keys = keys.masked_fill(~valid, 2.0)  # invalid cells sort last
        index = keys.argsort(dim=1)[:, :k].sort(dim=1).values
    return index, valid.gather(1, index)


class CLIPViLp(nn.Module):
    """The CLIP-ViLp model (see the module docstring).

    Args:
        vocab_size: WordPiece vocabulary size.
        num_answers: rows of the answer table (0: no QA head).
        size: a :data:`SIZES` name.
        backbone: the trainable :class:`pretraining.backbone.GridBackbone`, or None when the model
            only ever gets precomputed ``cells``.
        grid_dim: channels per cell (default: the backbone's).
        dropout: dropout of embeddings, attention and feed-forward layers.
        pad_id: the padding token id.
    """

    def __init__(self, vocab_size: int, num_answers: int, size: str = "base", backbone: nn.Module | None = None,
                 grid_dim: int | None = None, dropout: float = 0.1, pad_id: int = 0):
        super().__init__()
        if size not in SIZES:
            raise ModelInputError(f"unknown model size {size!r} (choose from {', '.join(SIZES)})")
        dims = SIZES[size]
        self.size, self.dims, self.vocab_size, self.num_answers = size, dims, vocab_size, num_answers
        grid_dim = grid_dim or getattr(backbone, "grid_dim", None)
        if not grid_dim:
            raise ModelInputError("give a backbone or grid_dim (channels per cell)")
        self.backbone = backbone
        self.grid_dim = grid_dim
        h = dims.hidden
        # text embeddings (BERT's)
        self.word_embeddings = nn.Embedding(vocab_size, h, padding_idx=pad_id)
        self.position_embeddings = nn.Embedding(MAX_TEXT_POSITIONS, h)
        self.token_type_embeddings = nn.Embedding(2, h)  # 0: text, 1: cells
        self.embed_norm = nn.LayerNorm(h, eps=1e-12)
        # cell embeddings: x / y positions in channel space, Linear to hidden, LayerNorm, dropout
        self.cell_x = nn.Embedding(MAX_GRID_SIDE, grid_dim)
        self.cell_y = nn.Embedding(MAX_GRID_SIDE, grid_dim)
        self.cell_proj = nn.Linear(grid_dim, h)
        self.cell_norm = nn.LayerNorm(h, eps=1e-12)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(h, dims.heads, dims.ff, dropout, activation="gelu", batch_first=True,
                                           layer_norm_eps=1e-12)
        self.encoder = nn.TransformerEncoder(layer, dims.layers, enable_nested_tensor=False)
        self.pooler = nn.Linear(h, h)
        # heads
        self.mlm_transform = nn.Linear(h, h)
        self.mlm_norm = nn.LayerNorm(h, eps=1e-12)
        self.mlm_bias = nn.Parameter(torch.zeros(vocab_size))
        self.itm_head = nn.Linear(h, 2)
        self.qa_head = nn.Sequential(nn.Linear(h, 2 * h), nn.GELU(), nn.LayerNorm(2 * h, eps=1e-12),
                                     nn.Linear(2 * h, num_answers)) if num_answers else None
        self._init_weights()

    def _init_weights(self) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorms (backbone untouched)."""
        for name, m in self.named_modules():
            if name.startswith("backbone"):
                continue
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.MultiheadAttention):
                nn.init.normal_(m.in_proj_weight, std=0.02)
                nn.init.zeros_(m.in_proj_bias)
        if self.word_embeddings.padding_idx is not None:
            with torch.no_grad():
                self.word_embeddings.weight[self.word_embeddings.padding_idx].zero_()

    # ------------------------------------------------------------------ embeddings
    def embed_text(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, D): word + position + token type 0, LayerNorm, dropout."""
        pos = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(pos)[None] + self.token_type_embeddings.weight[0]
        return self.dropout(self.embed_norm(x))

    def grid_cells(self, images: torch.Tensor | None, image_sizes: torch.Tensor | None, cells: torch.Tensor | None,
                   cell_mask: torch.Tensor | None):
        """The (B, C, h, w) cell map and its (B, h, w) bool validity, from images or given cells."""
        if (images is None) == (cells is None):
            raise ModelInputError("give exactly one of images (B, 3, H, W) and cells (B, C, h, w)")
        if images is not None:
            if self.backbone is None:
                raise ModelInputError("this model has no backbone: give precomputed cells")
            cells = self.backbone(images, image_sizes)
            if image_sizes is not None:
                from .backbone import cell_validity

                cell_mask = cell_validity(image_sizes, images.shape[-2:], cells.shape[-2:])
        if cells.dim() != 4 or cells.shape[1] != self.grid_dim:
            raise ModelInputError(f"cells must be (B, {self.grid_dim}, h, w), got {tuple(cells.shape)}")
        h, w = cells.shape[-2:]
        if max(h, w) > MAX_GRID_SIDE:
            raise ModelInputError(f"a {h} x {w} grid exceeds the position tables ({MAX_GRID_SIDE} per side)")
        if cell_mask is None:
            cell_mask = torch.ones(cells.shape[0], h, w, dtype=torch.bool, device=cells.device)
        return cells, cell_mask.bool()

    def embed_cells(self, cells: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) cells, (B, K) row-major indices -> (B, K, D) embeddings of those cells."""
        b, c, h, w = cells.shape
        flat = cells.flatten(2).transpose(1, 2)  # (B, h*w, C)
        picked = flat.gather(1, index[..., None].expand(-1, -1, c))
        picked = picked + self.cell_y(index // w) + self.cell_x(index % w)
        x = self.cell_proj(picked) + self.token_type_embeddings.weight[1]
        return self.dropout(self.cell_norm(x))

    # ------------------------------------------------------------------ forward
    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, images: torch.Tensor | None = None,
                image_sizes: torch.Tensor | None = None, cells: torch.Tensor | None = None,
                cell_mask: torch.Tensor | None = None, num_cells: int | None = None,
                cell_seeds: torch.Tensor | None = None) -> Encoded:
        """Encode text and image (see the module docstring for the arguments' shapes)."""
        if input_ids.dim() != 2 or attention_mask.shape != input_ids.shape:
            raise ModelInputError(f"input_ids and attention_mask must both be (B, L), got {tuple(input_ids.shape)} "
                                  f"and {tuple(attention_mask.shape)}")
        if input_ids.shape[1] > MAX_TEXT_POSITIONS:
            raise ModelInputError(f"{input_ids.shape[1]} tokens exceed the {MAX_TEXT_POSITIONS} text positions")
        cells, valid = self.grid_cells(images, image_sizes, cells, cell_mask)
        index, used = sample_cells(valid.flatten(1), num_cells, cell_seeds)
        text = self.embed_text(input_ids)
        visual = self.embed_cells(cells, index).to(text.dtype)
        x = torch.cat([text, visual], dim=1)
        pad = torch.cat([~attention_mask.bool(), ~used], dim=1)  # True: not attended to
        hidden = self.encoder(x, src_key_padding_mask=pad)
        pooled = torch.tanh(self.pooler(hidden[:, 0]))
        return Encoded(hidden=hidden, text=hidden[:, : input_ids.shape[1]], pooled=pooled, cell_mask=used,
                       cell_index=index)

    # ------------------------------------------------------------------ heads
    def mlm_logits(self, text_hidden: torch.Tensor) -> torch.Tensor:
        """(..., D) text states (e.g. only the masked positions) -> (..., vocab) logits; the decoder
        is the word-embedding matrix (tied) plus a bias."""
        x = self.mlm_norm(F.gelu(self.mlm_transform(text_hidden)))
        return F.linear(x, self.word_embeddings.weight, self.mlm_bias)

    def itm_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled -> (B, 2) logits: class 1 = the text belongs to the image."""
        return self.itm_head(pooled)

    def qa_logits(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, D) pooled -> (B, num_answers) logits over the answer table."""
        if self.qa_head is None:
            raise ModelInputError("this model was built without an answer table (num_answers=0)")
        return self.qa_head(pooled)

    def transformer_parameters(self):
        """Every parameter outside the backbone (AdamW's share)."""
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]

    def backbone_parameters(self):
        """The backbone's parameters (SGD's share; empty without a backbone)."""
        return [] if self.backbone is None else list(self.backbone.parameters())


def build_model(vocab_size: int, num_answers: int, size: str = "base", encoder: str | None = "clip_r50",
                weights=None, grid_dim: int | None = None, dropout: float = 0.1, pad_id: int = 0) -> CLIPViLp:
    """A :class:`CLIPViLp` with the registry's CLIP ResNet ``encoder`` as its backbone (``weights``
    as :func:`pretraining.backbone.build_backbone` takes them), or without one (``encoder=None``,
    ``grid_dim`` given) for precomputed cells."""
    backbone = None
    if encoder is not None:
        from .backbone import build_backbone

        backbone = build_backbone(encoder, weights)
    return CLIPViLp(vocab_size, num_answers, size, backbone, grid_dim, dropout, pad_id)
