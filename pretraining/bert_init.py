"""``--bert-init DIR``: start the Transformer from a user's BERT weights (Hugging Face names).

Accepted: a folder holding ``model.safetensors`` or ``pytorch_model.bin`` (``bert-base-uncased`` as
``huggingface-cli download`` leaves it), or such a file itself; names with or without the ``bert.``
prefix of ``BertForPreTraining``. Mapped (:func:`bert_name_map`): the word / position / token-type
embeddings and their LayerNorm, every layer (query / key / value stacked into the attention's
``in_proj``), the pooler, and when present the masked-LM head (transform, LayerNorm, bias; the
decoder is the tied word embeddings) and the next-sentence head as the ITM head (BERT's class 0,
"is next", is our class 1, "matches"). The cell embeddings, the answer head and the backbone keep
their own initialisation. The vocabulary must be the checkpoint's (``--vocab`` its ``vocab.txt``).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from vln.errors import DataFormatError

BERT_FILES = ("model.safetensors", "pytorch_model.bin")


def bert_weights_file(path: str | os.PathLike) -> Path:
    """The weights file of ``path`` (a file, or a folder holding one of :data:`BERT_FILES`)."""
    path = Path(path)
    if path.is_dir():
        for name in BERT_FILES:
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(f"no BERT weights in {path} (expected one of {', '.join(BERT_FILES)})")
    if not path.is_file():
        raise FileNotFoundError(f"no BERT weights at {path}")
    return path


def read_bert_state(path: str | os.PathLike) -> tuple[dict, Path]:
    """(state dict with the ``bert.`` prefix removed, the file read)."""
    f = bert_weights_file(path)
    try:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(f))
        else:
            state = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - one line naming the file
        raise DataFormatError(f, None, None, f"cannot be read as BERT weights ({type(e).__name__}: {e})") from None
    state = {(k[5:] if k.startswith("bert.") else k).replace(".gamma", ".weight").replace(".beta", ".bias"): v
             for k, v in state.items()}
    return state, f


def bert_name_map(layers: int) -> dict[str, str | tuple]:
    """Our parameter name -> the BERT name, or a tuple of the three names stacked (query, key, value)."""
    out = {"word_embeddings.weight": "embeddings.word_embeddings.weight",
           "position_embeddings.weight": "embeddings.position_embeddings.weight",
           "token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
           "embed_norm.weight": "embeddings.LayerNorm.weight", "embed_norm.bias": "embeddings.LayerNorm.bias",
           "pooler.weight": "pooler.dense.weight", "pooler.bias": "pooler.dense.bias"}
    for i in range(layers):
        ours, theirs = f"encoder.layers.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            out[f"{ours}self_attn.in_proj_{kind}"] = tuple(f"{theirs}attention.self.{q}.{kind}"
                                                           for q in ("query", "key", "value"))
            out[f"{ours}self_attn.out_proj.{kind}"] = f"{theirs}attention.output.dense.{kind}"
            out[f"{ours}norm1.{kind}"] = f"{theirs}attention.output.LayerNorm.{kind}"
            out[f"{ours}linear1.{kind}"] = f"{theirs}intermediate.dense.{kind}"
            out[f"{ours}linear2.{kind}"] = f"{theirs}output.dense.{kind}"
            out[f"{ours}norm2.{kind}"] = f"{theirs}output.LayerNorm.{kind}"
    return out


#: Heads loaded when the file has them (BertForPreTraining).
OPTIONAL_HEADS = {"mlm_transform.weight": "cls.predictions.transform.dense.weight",
                  "mlm_transform.bias": "cls.predictions.transform.dense.bias",
                  "mlm_norm.weight": "cls.predictions.transform.LayerNorm.weight",
                  "mlm_norm.bias": "cls.predictions.transform.LayerNorm.bias",
                  "mlm_bias": "cls.predictions.bias"}


def load_bert_weights(model, path: str | os.PathLike) -> list[str]:
    """Copy BERT's weights into ``model`` (a :class:`pretraining.model.CLIPViLp`); returns the
    parameters set.

    Raises:
        FileNotFoundError: no weights file. DataFormatError: a missing BERT tensor, a shape that
            differs (another size or vocabulary), or more layers than the model has, named.
    """
    state, f = read_bert_state(path)
    own = model.state_dict()
    layers = model.dims.layers
    extra = {int(k.split(".")[2]) for k in state if k.startswith("encoder.layer.")} - set(range(layers))
    if extra:
        raise DataFormatError(f, None, "encoder.layer", f"holds {layers + len(extra)} layers, the model "
                              f"(--size {model.size}) has {layers}")
    plan = dict(bert_name_map(layers))
    plan.update({k: v for k, v in OPTIONAL_HEADS.items() if v in state})
    new = {}
    for ours, theirs in plan.items():
        names = theirs if isinstance(theirs, tuple) else (theirs,)
        for n in names:
            if n not in state:
                raise DataFormatError(f, None, n, "is missing (not a BERT checkpoint of this size?)")
        value = torch.cat([state[n] for n in names]) if isinstance(theirs, tuple) else state[theirs]
        if tuple(value.shape) != tuple(own[ours].shape):
            hint = " (the vocabulary differs: pass the checkpoint's vocab.txt as --vocab)" if "word" in ours or \
                ours == "mlm_bias" else f" (another model size than --size {model.size}?)"
            raise DataFormatError(f, None, names[0], f"has shape {tuple(value.shape)}, the model needs "
                                  f"{tuple(own[ours].shape)}{hint}")
        new[ours] = value
    if "cls.seq_relationship.weight" in state:  # NSP class 0 = "is next" = our ITM class 1
        new["itm_head.weight"] = state["cls.seq_relationship.weight"].flip(0)
        new["itm_head.bias"] = state["cls.seq_relationship.bias"].flip(0)
    with torch.no_grad():
        for name, value in new.items():
            own[name].copy_(value.to(own[name].dtype))
    return sorted(new)
