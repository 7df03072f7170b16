"""The whole CLIP of a registry entry: image tower, text tower with open_clip's tokenizer, logit scale.

Built by :func:`features.encoders.get_clip_model` from the same spec and weights file as the
image encoder (:func:`features.encoders.load_open_clip` is the one loader). What the zero-shot
VQA probe and Grad-CAM need:

* :meth:`ClipModel.encode_images`: (B, 3, S, S) pixels -> (B, D) L2-normalised image embeddings;
* :meth:`ClipModel.encode_tokens` / :meth:`ClipModel.encode_texts`: texts -> (N, D) L2-normalised
  text embeddings, batched; each batch is cut to its longest token sequence (CLIP's text
  transformer is causal and pools at the end-of-text token, so the padding after it changes
  nothing: equal to ``CLIP.encode_text`` on the full 77 tokens, tested);
* :class:`Tokens`: open_clip's tokenizer (the BPE vocabulary ships with open_clip: offline) with
  each piece of text encoded once: the 3,129 answers of a VQA vocabulary are BPE-encoded once,
  and a prompt ``question: Q answer: A`` is assembled from the ids of its question part and its
  answer (the tokenizer splits at whitespace: the same ids as tokenizing the whole prompt, tested);
* :func:`clip_view`: CLIP's evaluation preprocessing of an image file (shorter side resized to the
  input size, bicubic, centre crop), as uint8 pixels.
"""
from __future__ import annotations

import logging
import os
from contextlib import nullcontext
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from vln.errors import DataFormatError, VLNError

from .registry import EncoderSpec


class TextTowerError(VLNError, ValueError):
    """An encoder without a usable CLIP text tower was asked for one (the message names it)."""


class ImageReadError(VLNError, OSError):
    """An image file that is missing or cannot be decoded (the message names it)."""


class Tokens:
    """open_clip's tokenizer of a CLIP, memoising the BPE ids of each piece of text.

    Args:
        tokenizer: ``open_clip.get_tokenizer(architecture, context_length=...)``.
        context_length: the text tower's context (77 for OpenAI's CLIPs).

    ``batch(parts)`` tokenizes texts given as tuples of pieces joined by single spaces:
    ``("question: what is it? answer:", "a cat")``. With open_clip's BPE tokenizer the ids of each
    piece are memoised (pieces never share a word: the tokenizer splits words at whitespace);
    other tokenizers (Hugging Face ones) tokenize the joined text.
    """

    def __init__(self, tokenizer, context_length: int):
        self.tokenizer = tokenizer
        self.context_length = int(context_length)
        self.memo: dict[str, list[int]] = {}
        self.assembles = (hasattr(tokenizer, "encode") and hasattr(tokenizer, "sot_token_id")
                          and getattr(tokenizer, "reduction_fn", None) is None)

    def ids(self, piece: str) -> list[int]:
        """BPE ids of one piece of text (memoised)."""
        out = self.memo.get(piece)
        if out is None:
            out = self.memo[piece] = self.tokenizer.encode(piece)
        return out

    def batch(self, parts: Sequence[Sequence[str]]) -> torch.Tensor:
        """(N, context_length) int64 token ids of texts given as pieces, as open_clip's tokenizer
        gives them for the joined texts (start / end tokens, zero padding, truncation keeping
        the end token last)."""
        if not self.assembles:
            return self.tokenizer([" ".join(p) for p in parts], context_length=self.context_length)
        tok, ctx = self.tokenizer, self.context_length
        out = torch.zeros(len(parts), ctx, dtype=torch.long)
        for i, pieces in enumerate(parts):
            ids = [tok.sot_token_id]
            for piece in pieces:
                ids += self.ids(piece)
            ids.append(tok.eot_token_id)
            if len(ids) > ctx:
                ids = ids[:ctx]
                ids[-1] = tok.eot_token_id
            out[i, :len(ids)] = torch.tensor(ids)
        return out


class ClipModel(torch.nn.Module):
    """A CLIP with both towers, built from a registry spec (see the module docstring).

    Attributes:
        spec: the :class:`EncoderSpec`.
        clip: the open_clip ``CLIP`` (frozen, eval mode).
        image: the :class:`features.encoders.OpenClipEncoder` over ``clip.visual`` (the same
            module): normalisation and the provenance fields (``weights``, ``weights_sha256``,
            ``random_weights``) every feature file records.
        tokens: :class:`Tokens` of the text tower.
    """

    def __init__(self, spec: EncoderSpec, model, source):
        super().__init__()
        import open_clip

        from .encoders import OpenClipEncoder, root_log_filter

        if not hasattr(model, "token_embedding") or getattr(model, "attn_mask", None) is None:
            raise TextTowerError(f"encoder {spec.name!r} ({spec.architecture}): not a CLIP with a causal "
                                 "text transformer (open_clip CLIP); the zero-shot probe needs one")
        self.spec = spec
        self.clip = model
        self.image = OpenClipEncoder(spec, model.visual, source)
        with root_log_filter(lambda r: not (r.levelno <= logging.INFO and "open_clip" in r.pathname)):  # its choice, at INFO
            tokenizer = open_clip.get_tokenizer(spec.architecture, context_length=model.context_length)
        n_ids = getattr(tokenizer, "vocab_size", None)
        if n_ids is not None and n_ids > model.vocab_size:
            raise TextTowerError(f"encoder {spec.name!r}: its text tower embeds {model.vocab_size} token ids but "
                                 f"open_clip's tokenizer of {spec.architecture} gives {n_ids}")
        self.tokens = Tokens(tokenizer, model.context_length)

    @property
    def device(self) -> torch.device:
        return self.image.device

    @property
    def logit_scale(self) -> float:
        """CLIP's learned temperature, ``exp(logit_scale)`` (100 for OpenAI's models)."""
        return float(self.clip.logit_scale.exp())

    def embed_images(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised (B, 3, S, S) input -> (B, D) L2-normalised embeddings, with autograd (Grad-CAM)."""
        return F.normalize(self.clip.visual(x).float(), dim=-1)

    @torch.inference_mode()
    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) pixels in [0, 255] (S = ``spec.input_size``) -> (B, D) float32, L2-normalised."""
        return self.embed_images(self.image.normalize(images.to(self.device)))

    def embed_tokens(self, tokens: torch.Tensor) -> torch.Tensor:
        """(N, L) token ids (L <= context length; anything after the end token is padding) ->
        (N, D) L2-normalised float32, through ``CLIP.forward`` with the position embedding and the
        causal mask cut to L."""
        m, n = self.clip, tokens.shape[1]
        state = {"positional_embedding": m.positional_embedding[:n], "attn_mask": m.attn_mask[:n, :n]}
        out = torch.func.functional_call(m, state, args=(), kwargs={"text": tokens.to(self.device)}, strict=False)
        text = out["text_features"] if isinstance(out, dict) else out[1]
        return text.float()

    @torch.inference_mode()
    def encode_tokens(self, tokens: torch.Tensor, batch_size: int = 256,
                      amp_dtype: torch.dtype | None = None) -> torch.Tensor:
        """(N, context) token ids -> (N, D) float32 L2-normalised text embeddings on ``device``.

        Sequences are sorted by length and each batch of ``batch_size`` is cut to its longest;
        ``amp_dtype`` (``torch.bfloat16`` on a GPU) runs the tower under autocast.
        """
        # a length is up to the last non-zero id (the end token): id 0 is also "!", not only padding
        positions = torch.arange(1, tokens.shape[1] + 1)
        lengths = ((tokens != 0) * positions).max(dim=1).values.clamp(min=1)
        order = torch.argsort(lengths, stable=True)
        out = None
        ctx = torch.autocast(self.device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
        with ctx:
            for start in range(0, len(tokens), batch_size):
                idx = order[start:start + batch_size]
                emb = F.normalize(self.embed_tokens(tokens[idx, :int(lengths[idx].max())]).float(), dim=-1)
                if out is None:
                    out = torch.empty(len(tokens), emb.shape[1], device=self.device)
                out[idx.to(self.device)] = emb
        return out if out is not None else torch.empty(0, self.spec.pooled_dim, device=self.device)

    def encode_texts(self, texts: Sequence[str] | Sequence[Sequence[str]], batch_size: int = 256,
                     amp_dtype: torch.dtype | None = None) -> torch.Tensor:
        """Texts (strings, or tuples of pieces joined by spaces) -> (N, D) float32 L2-normalised."""
        parts = [(t,) if isinstance(t, str) else tuple(t) for t in texts]
        return self.encode_tokens(self.tokens.batch(parts), batch_size, amp_dtype)


def clip_view(path: str | os.PathLike, size: int):
    """CLIP's evaluation preprocessing of an image file: RGB, shorter side resized to ``size``
    (bicubic), centre crop ``size x size``.

    Returns:
        (3, size, size) uint8 tensor, and the cropped PIL image (what the model sees, for overlays).

    Raises:
        DataFormatError: the file cannot be decoded as an image (names it).
    """
    from PIL import Image
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms import functional as TF

    try:
        with Image.open(path) as im:
            im = im.convert("RGB")
    except (OSError, ValueError) as e:
        if not Path(path).exists():
            raise FileNotFoundError(f"image {path} does not exist") from None
        raise DataFormatError(path, None, None, f"cannot be decoded as an image ({e})") from None
    im = TF.center_crop(TF.resize(im, size, interpolation=InterpolationMode.BICUBIC), size)
    return TF.pil_to_tensor(im), im


class ClipViews(torch.utils.data.Dataset):
    """``(image_id, path)`` items -> ``{"image_id", "image": (3, S, S) uint8}`` by :func:`clip_view`
    (for a ``DataLoader``: decoding in worker processes)."""

    def __init__(self, items: Sequence[tuple[str, Path]], size: int):
        self.items, self.size = list(items), int(size)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        image_id, path = self.items[i]
        try:
            return {"image_id": image_id, "image": clip_view(path, self.size)[0]}
        except (DataFormatError, FileNotFoundError) as e:  # raised by the main process: the message survives
            return {"image_id": image_id, "error": str(e)}


def encode_image_files(clip: ClipModel, items: Sequence[tuple[str, Path]], batch_size: int = 32,
                       workers: int = 0) -> tuple[list[str], torch.Tensor]:
    """CLIP embeddings of image files.

    Returns:
        the image ids in ``items`` order and their (N, D) float32 L2-normalised embeddings.
    """
    loader = torch.utils.data.DataLoader(ClipViews(items, clip.spec.input_size[0]), batch_size=batch_size,
                                         num_workers=workers, collate_fn=_stack_views)
    ids, embs = [], []
    for batch in loader:
        if "error" in batch:
            raise ImageReadError(batch["error"])
        ids += batch["image_id"]
        embs.append(clip.encode_images(batch["image"]))
    return ids, (torch.cat(embs) if embs else torch.empty(0, clip.spec.pooled_dim))


def _stack_views(items: list[dict]) -> dict:
    for it in items:
        if "error" in it:
            return {"error": it["error"]}
    return {"image_id": [it["image_id"] for it in items], "image": torch.stack([it["image"] for it in items])}
