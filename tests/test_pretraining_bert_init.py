"""--bert-init: Hugging Face BERT names mapped onto the model, checked against BERT's layer maths."""
import math

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from pretraining.bert_init import load_bert_weights
from pretraining.model import SIZES, CLIPViLp
from vln.errors import DataFormatError

VOCAB = 30


def bert_state(layers, h, ff, vocab=VOCAB, seed=0):
    """A random ``BertForPreTraining`` state dict (Hugging Face names) of the given sizes."""
    g = torch.Generator().manual_seed(seed)

    def r(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    s = {"bert.embeddings.word_embeddings.weight": r(vocab, h), "bert.embeddings.position_embeddings.weight": r(512, h),
         "bert.embeddings.token_type_embeddings.weight": r(2, h), "bert.embeddings.LayerNorm.weight": 1 + r(h),
         "bert.embeddings.LayerNorm.bias": r(h), "bert.pooler.dense.weight": r(h, h), "bert.pooler.dense.bias": r(h),
         "cls.predictions.bias": r(vocab), "cls.predictions.transform.dense.weight": r(h, h),
         "cls.predictions.transform.dense.bias": r(h), "cls.predictions.transform.LayerNorm.weight": 1 + r(h),
         "cls.predictions.transform.LayerNorm.bias": r(h), "cls.seq_relationship.weight": r(2, h),
         "cls.seq_relationship.bias": r(2)}
    for i in range(layers):
        p = f"bert.encoder.layer.{i}."
        for name, shape in (("attention.self.query", (h, h)), ("attention.self.key", (h, h)),
                            ("attention.self.value", (h, h)), ("attention.output.dense", (h, h)),
                            ("intermediate.dense", (ff, h)), ("output.dense", (h, ff))):
            s[p + name + ".weight"], s[p + name + ".bias"] = r(*shape), r(shape[0])
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            s[p + name + ".weight"], s[p + name + ".bias"] = 1 + r(h), r(h)
    return s


def bert_layer(s, i, x, heads):
    """BERT's layer (Hugging Face ``BertLayer``, eval mode), written out."""
    p = f"bert.encoder.layer.{i}."

    def lin(name, t):
        return F.linear(t, s[p + name + ".weight"], s[p + name + ".bias"])

    b, n, h = x.shape
    d = h // heads
    q, k, v = (lin(f"attention.self.{w}", x).view(b, n, heads, d).transpose(1, 2) for w in ("query", "key", "value"))
    att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(d), -1) @ v
    a = lin("attention.output.dense", att.transpose(1, 2).reshape(b, n, h))
    x = F.layer_norm(a + x, (h,), s[p + "attention.output.LayerNorm.weight"], s[p + "attention.output.LayerNorm.bias"], 1e-12)
    f = lin("output.dense", F.gelu(lin("intermediate.dense", x)))
    return F.layer_norm(f + x, (h,), s[p + "output.LayerNorm.weight"], s[p + "output.LayerNorm.bias"], 1e-12)


def test_bert_weights_give_berts_layers_and_heads(tmp_path):
    dims = SIZES["tiny"]
    state = bert_state(dims.layers, dims.hidden, dims.ff)
    save_file(state, str(tmp_path / "model.safetensors"))
    model = CLIPViLp(VOCAB, 3, "tiny", grid_dim=8, dropout=0.0).eval()
    loaded = load_bert_weights(model, tmp_path)
    assert "itm_head.weight" in loaded and "mlm_bias" in loaded
    assert torch.equal(model.word_embeddings.weight, state["bert.embeddings.word_embeddings.weight"])
    x = torch.randn(2, 5, dims.hidden)
    with torch.no_grad():
        ours = model.encoder.layers[1](x)
        theirs = bert_layer(state, 1, x, dims.heads)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)
    assert torch.equal(model.itm_head.weight[1], state["cls.seq_relationship.weight"][0])  # NSP "is next" = match


def test_bert_weights_of_another_size_or_vocabulary_are_refused(tmp_path):
    dims = SIZES["tiny"]
    torch.save(bert_state(dims.layers, dims.hidden, dims.ff, vocab=VOCAB + 1), tmp_path / "pytorch_model.bin")
    model = CLIPViLp(VOCAB, 0, "tiny", grid_dim=8)
    with pytest.raises(DataFormatError, match="vocabulary differs"):
        load_bert_weights(model, tmp_path)
    save_file(bert_state(dims.layers + 1, dims.hidden, dims.ff), str(tmp_path / "deeper.safetensors"))
    with pytest.raises(DataFormatError, match="holds 3 layers"):
        load_bert_weights(model, tmp_path / "deeper.safetensors")
    with pytest.raises(FileNotFoundError, match="no BERT weights"):
        load_bert_weights(model, tmp_path / "nothing")
