"""Which tokenizer built an RxR vocabulary is recorded with it, and a different one is refused.

The stanza path runs on a tiny stanza tokenize model this test builds offline (random weights,
saved by stanza's own trainer, with a ``resources.json`` naming it), so it needs no download.
"""
from __future__ import annotations

import json
import logging

import pytest

from agents.checkpoint import load_checkpoint, save_checkpoint
from agents.config import TrainConfig
from agents.inference import checkpoint_tokenizer, load_follower
from agents.trainer import Trainer
from env_fixtures import write_data_root
from vln.datasets import load_r2r, write_rxr
from vln.tokenizers import REGEX_BACKEND, MultilingualTokenizer, R2RTokenizer, TokenizerMismatch, check_tokenizer

HINDI = "सीधे जाइए और बाएं मुड़िए।"
STANZA_HI = {"tokenizer": "MultilingualTokenizer", "stanza_dir": "/models/stanza",
             "languages": {"en": REGEX_BACKEND, "hi": "stanza 1.15.0 hi/tokenize/hdtb.pt sha256:0123456789abcdef"}}


def build_stanza_tokenizer_model(root, lang: str = "hi", seed: int = 0):
    """A stanza resources folder holding one tiny, randomly initialised ``tokenize`` model."""
    import torch
    from stanza.models import tokenizer as stanza_tokenizer
    from stanza.models.tokenization.trainer import Trainer as StanzaTrainer
    from stanza.models.tokenization.vocab import Vocab

    args = stanza_tokenizer.parse_args(["--lang", lang, "--shorthand", f"{lang}_tiny", "--hidden_dim", "8",
                                        "--emb_dim", "4", "--conv_res", "1", "--rnn_layers", "1"])
    args["feat_funcs"] = stanza_tokenizer.DEFAULT_FEAT_FUNCS
    args["feat_dim"], args["num_dict_feat"] = len(args["feat_funcs"]), 0
    vocab = Vocab(data=[[(c, 0) for c in HINDI + "walk to the door."]], lang=lang)
    args["vocab_size"] = len(vocab)
    torch.manual_seed(seed)
    (root / lang / "tokenize").mkdir(parents=True, exist_ok=True)
    StanzaTrainer(args=args, vocab=vocab, device="cpu").save(str(root / lang / "tokenize" / "tiny.pt"))
    resources = {lang: {"lang_name": lang, "packages": {"default": {"tokenize": "tiny"}},
                        "default_processors": {"tokenize": "tiny"}, "tokenize": {"tiny": {}}}}
    (root / "resources.json").write_text(json.dumps(resources))
    return root


# ------------------------------------------------------------------ recording and refusing (regex)
def test_regex_split_is_recorded_per_language(tmp_path):
    tok = MultilingualTokenizer(stanza_dir=tmp_path / "none")
    tok.split(HINDI), tok.split("Walk to the door.")
    spec = tok.describe()
    assert spec["tokenizer"] == "MultilingualTokenizer"
    assert spec["languages"] == {"en": REGEX_BACKEND, "hi": REGEX_BACKEND}
    check_tokenizer(spec, MultilingualTokenizer(stanza_dir=tmp_path / "other"), "run")  # same split: accepted
    assert R2RTokenizer().describe()["languages"] == {"en": "regex EnvDrop (\\W+) split v1"}


def test_a_vocabulary_built_by_stanza_is_refused_with_the_regex_split(tmp_path):
    with pytest.raises(TokenizerMismatch) as e:
        check_tokenizer(STANZA_HI, MultilingualTokenizer(stanza_dir=tmp_path), "runs/rxr/latest.pt")
    msg = str(e.value)
    assert msg.startswith("runs/rxr/latest.pt: its vocabulary was built with 'hi' split by [stanza 1.15.0 hi/tokenize/hdtb.pt")
    assert f"would be split by [{REGEX_BACKEND}]" in msg and str(tmp_path) in msg
    assert "--stanza-dir" in msg and "/models/stanza" in msg
    with pytest.raises(TokenizerMismatch, match="built by R2RTokenizer"):
        check_tokenizer(R2RTokenizer().describe(), MultilingualTokenizer(stanza_dir=tmp_path), "ckpt")


def test_an_unrecorded_tokenizer_is_accepted_with_a_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        check_tokenizer(None, MultilingualTokenizer(stanza_dir=tmp_path), "old.pt")
    assert "old.pt does not record which tokenizer" in caplog.text


def test_checkpoint_loading_refuses_another_splitter(tmp_path):
    vocab = MultilingualTokenizer(use_stanza=False).build_vocab([HINDI], min_count=1)
    meta = {"config": {"dataset": "rxr", "max_instruction_length": 160, "stanza_dir": str(tmp_path)},
            "vocab": vocab, "tokenizer": STANZA_HI}
    with pytest.raises(TokenizerMismatch, match="best.pt: its vocabulary was built with 'hi' split by .stanza"):
        checkpoint_tokenizer(meta, "best.pt")
    meta["tokenizer"] = {**STANZA_HI, "languages": {"hi": REGEX_BACKEND}}
    assert checkpoint_tokenizer(meta, "best.pt").vocab[: len(vocab)] == vocab


# ------------------------------------------------------------------ a run folder and its checkpoint
def write_rxr_root(tmp_path):
    """The tiny data root with its R2R splits also written as RxR guide files (en and hi)."""
    root = write_data_root(tmp_path / "data")
    n = 0
    for split in ("train", "val_unseen"):
        eps = []
        for ep in load_r2r(root / "R2R" / f"R2R_{split}.json"):
            n += 1
            lang = "hi-IN" if n % 2 else "en-US"
            text = HINDI if lang == "hi-IN" else ep.instruction
            eps.append({"instruction_id": n, "language": lang, "path_id": ep.path_id, "scan": ep.scan,
                        "path": list(ep.path), "heading": ep.heading, "instruction": text})
        write_rxr(root / "RxR" / f"rxr_{split}_guide.jsonl.gz", eps)
    return root


def test_rxr_run_records_its_tokenizer_and_resume_refuses_another(tmp_path):
    root = write_rxr_root(tmp_path)
    out = tmp_path / "run"
    cfg = dict(features="toy", dataset="rxr", data_dir=str(root), out=str(out), batch_size=4, iters=2, eval_every=2,
               eval_splits="val_unseen", hidden=32, word_embedding=16, action_embedding=8, progress=False,
               stanza_dir=str(tmp_path / "no_stanza_models"))
    Trainer(TrainConfig(**cfg)).train()
    recorded = json.loads((out / "tokenizer.json").read_text())
    assert recorded["languages"] == {"en": REGEX_BACKEND, "hi": REGEX_BACKEND}
    tensors, meta = load_checkpoint(out / "latest.pt")
    assert meta["tokenizer"] == recorded
    load_follower(out / "latest.pt")  # the same split on load: accepted
    # the same run as if its vocabulary had been built by a stanza model this machine lacks
    save_checkpoint(out / "latest.pt", tensors, {**meta, "tokenizer": STANZA_HI})
    with pytest.raises(TokenizerMismatch, match=r"latest.pt: its vocabulary was built with 'hi' split by .stanza"):
        Trainer(TrainConfig(**{**cfg, "iters": 4}))
    with pytest.raises(TokenizerMismatch):
        load_follower(out / "latest.pt")


# ------------------------------------------------------------------ the stanza path itself
def test_stanza_model_is_used_recorded_by_hash_and_refused_when_it_changes(tmp_path):
    pytest.importorskip("stanza", reason="stanza is not installed (pip install stanza)")
    models = build_stanza_tokenizer_model(tmp_path / "stanza_a")
    tok = MultilingualTokenizer(stanza_dir=models)
    assert tok.backend("hi") == "stanza" and tok.backend("en") == "regex"  # only hi has a model
    words = tok.split(HINDI)  # runs the stanza pipeline (a random model: any segmentation)
    assert words and "".join(words).replace(" ", "") == HINDI.replace(" ", "")
    spec = tok.describe()
    import stanza

    assert spec["languages"]["hi"].startswith(f"stanza {stanza.__version__} hi/tokenize/tiny.pt sha256:")
    check_tokenizer(spec, MultilingualTokenizer(stanza_dir=models), "run")  # the same model: accepted
    with pytest.raises(TokenizerMismatch, match="split by .regex split_words v1."):
        check_tokenizer(spec, MultilingualTokenizer(stanza_dir=tmp_path / "none"), "run")
    other = build_stanza_tokenizer_model(tmp_path / "stanza_b", seed=1)  # another model file, same name
    with pytest.raises(TokenizerMismatch, match="hi/tokenize/tiny.pt sha256"):
        check_tokenizer(spec, MultilingualTokenizer(stanza_dir=other), "run")
