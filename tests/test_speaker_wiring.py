"""The speaker's encoder applies dropout where the original EnvDrop ``SpeakerEncoder`` does.

The original (R2R-EnvDrop ``model.py``): ``ctx = drop(lstm(actions))``; ``x = attention(ctx,
views)`` (the ``h_tilde`` of soft-dot attention); ``x = drop(x)``; ``x = drop(post_lstm(x))``, both
LSTMs bidirectional (``--bidir``) and run over the whole padded batch. Written out here with the
module's own weights, in training mode (feature dropout 0, so the only random draws are the three
dropouts, in the original's order).
"""
from __future__ import annotations

import torch

from agents.speaker import Speaker, SpeakerConfig


def original_encoder(enc, views, actions):
    B, T = actions.shape[:2]
    ctx, _ = enc.lstm(actions)
    ctx = enc.drop(ctx)
    x, _ = enc.attention(ctx.reshape(B * T, -1), views.reshape(B * T, 36, -1))
    x = enc.drop(x.view(B, T, -1))
    x, _ = enc.post_lstm(x)
    return enc.drop(x)


def test_speaker_encoder_drops_where_the_original_does():
    torch.manual_seed(0)
    cfg = SpeakerConfig(vocab_size=20, feature_dim=8, word_embedding=8, hidden=16, dropout=0.5, feature_dropout=0.0)
    enc = Speaker(cfg).encoder.train()
    assert enc.lstm.bidirectional and enc.post_lstm.bidirectional and enc.lstm.hidden_size == cfg.hidden // 2
    B, T = 3, 5
    views, actions = torch.randn(B, T, 36, cfg.feature_size), torch.randn(B, T, cfg.feature_size)
    lengths = torch.tensor([5, 2, 4])
    torch.manual_seed(1)
    got = enc(views, actions, lengths)
    torch.manual_seed(1)
    want = original_encoder(enc, views, actions)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
