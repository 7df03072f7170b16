"""Checkpoints of the navigation agents: the run layer's (training.checkpoint) under the tag
``clipvil-agent-checkpoint-v1``, and the check that a checkpoint holds a trained follower.

Loading is ``weights_only``: a checkpoint can never run code; an unreadable file is one line
naming it and what is wrong with it.
"""
from __future__ import annotations

import os
from pathlib import Path

from training import checkpoint as run_checkpoint

FORMAT = "clipvil-agent-checkpoint-v1"


def save_checkpoint(path: str | os.PathLike, tensors: dict, meta: dict) -> Path:
    """Write an agent checkpoint atomically (see :func:`training.checkpoint.save_checkpoint`)."""
    return run_checkpoint.save_checkpoint(path, tensors, meta, fmt=FORMAT)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[dict, dict]:
    """(tensors, meta) of an agent checkpoint (see :func:`training.checkpoint.load_checkpoint`).

    Raises:
        FileNotFoundError: no such file.
        DataFormatError: not an agent checkpoint of this toolkit, or not readable as one.
    """
    return run_checkpoint.load_checkpoint(path, map_location, fmt=FORMAT)


#: Checkpoint meta key naming how the follower's decoder carries its state from step to step.
DECODER_STATE_KEY = "decoder_state"
#: EnvDrop's: the previous step's attended ``h_tilde`` is the next step's view query and LSTMCell
#: hidden input, and the decoder starts from the encoder's final states in backward-forward order.
#: Checkpoints written before 2026-12-03 have no key (their followers were trained feeding the
#: LSTMCell's own output back); those of 2026-12-03 hold ``"h_tilde"`` (forward-backward initial
#: state). Either would act differently under this decoder.
DECODER_STATE = "h_tilde/bwd_fwd"


def require_current_decoder(path, meta: dict) -> None:
    """Raise ValueError if the follower of the checkpoint at ``path`` was trained with another decoder wiring."""
    got = meta.get(DECODER_STATE_KEY)
    if got != DECODER_STATE:
        raise ValueError(f"checkpoint {path}: field {DECODER_STATE_KEY!r} is {got!r}, expected {DECODER_STATE!r}: its "
                         "follower was trained before its decoder was wired as EnvDrop's (the attended state fed "
                         "forward, the encoder's final states backward direction first; 2026-12-03) and would "
                         "act differently now; train it again")


def require_trained_follower(path, tensors: dict, meta: dict) -> None:
    """Raise ValueError unless the checkpoint at ``path`` holds a trained follower of the current decoder.

    A ``--mode speaker`` run saves the untouched follower of its trainer too; it is refused.
    """
    if "follower" not in tensors or "follower_config" not in meta or meta.get("config", {}).get("mode") == "speaker":
        raise ValueError(f"checkpoint {path} holds no trained follower: it is from a --mode speaker run "
                         "(use a --mode follower or --mode bt checkpoint)")
    require_current_decoder(path, meta)
