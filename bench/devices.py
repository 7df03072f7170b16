"""The ``--device all|cpu|cuda`` option of the training benchmarks and the devices it names."""
from __future__ import annotations

import argparse

import torch


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=("all", "cpu", "cuda"), default="all",
                        help="which devices to measure (default: the CPU, and CUDA when torch sees a GPU)")


def devices_to_measure(parser: argparse.ArgumentParser, choice: str) -> list[str]:
    """The devices ``--device choice`` names; a parser error when CUDA is asked for and absent."""
    gpu = torch.cuda.is_available()
    if choice == "cuda" and not gpu:
        parser.error("--device cuda asked for, but torch sees no CUDA device")
    return {"all": ["cpu"] + (["cuda"] if gpu else []), "cpu": ["cpu"], "cuda": ["cuda"]}[choice]
