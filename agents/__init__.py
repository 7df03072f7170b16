"""Agents for vision-and-language navigation: the EnvDrop follower and speaker, back-translation,
their training loop and tools.

Public API::

    from agents import AGENTS
    from agents.config import TrainConfig          # hyper-parameters (EnvDrop defaults)
    from agents.trainer import Trainer             # Trainer(cfg).train() -> validation history
    from agents.inference import load_follower, decode_split
    from agents.checkpoint import save_checkpoint, load_checkpoint  # the run layer (training/) with the agent format tag

Importing this package does not import torch; the modules do.
"""
from __future__ import annotations

from vln.registry import Registry

#: Agent family name -> "module:Class" of its model (looked up lazily so ``import agents`` stays light).
AGENTS: Registry = Registry("agent")
AGENTS.register("follower", "agents.follower:Follower")
AGENTS.register("speaker", "agents.speaker:Speaker")
