"""Pretrained weight files: where they are looked for, and reading every format a researcher holds.

Accepted files (any of them as ``--weights PATH``, or found by name under ``$CLIPVIL_WEIGHTS_DIR``):

* OpenAI's released CLIP files (``RN50.pt``, ``RN101.pt``, ``RN50x4.pt``, ``ViT-B-32.pt``):
  TorchScript archives, read with ``torch.jit.load`` (only their state dict is used);
* open_clip / Hugging Face checkpoints: ``open_clip_pytorch_model.bin``, ``open_clip_model.safetensors``
  (or any ``.bin`` / ``.pth`` / ``.pt`` state dict, ``.safetensors``), plain or under ``state_dict``;
* a folder holding one of those (a Hugging Face snapshot, ``huggingface-cli download REPO
  --local-dir DIR``);
* a Hugging Face hub cache (a folder holding ``models--timm--resnet50x4_clip.openai``), read the way
  ``HF_HUB_OFFLINE=1`` reads it: cached files only, never the network;
* torchvision's ImageNet file (``resnet152-394f9c45.pth``).

Where ``weights=None`` looks (:func:`locate_weights`): ``$CLIPVIL_WEIGHTS_DIR`` when set (and
nothing else: a missing file there is an error); else the local caches (the Hugging Face hub
cache, open_clip's and torch hub's download folders); else, when the download host answers, the
usual download. Offline (``HF_HUB_OFFLINE=1`` or a host that does not resolve) a missing file fails
at once with one message naming the file, the folders searched and the flag / variable to set.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from vln.errors import DataFormatError, DependencyNotInstalled

from .provenance import sha256_file
from .registry import WEIGHTS_DIR_ENV, EncoderSpec

logger = logging.getLogger(__name__)

RANDOM = "random"
#: File names looked for inside a folder (a Hugging Face snapshot), best first (open_clip's order).
FOLDER_FILES = ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors", "open_clip_pytorch_model.bin",
                "open_clip_pytorch_model.pth", "model.safetensors", "pytorch_model.bin")
#: Non-tensor entries of OpenAI's archives' state dicts.
_OPENAI_EXTRA_KEYS = ("input_resolution", "context_length", "vocab_size")
_WEIGHT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors")


class WeightsUnavailableError(DependencyNotInstalled):
    """Pretrained weights could not be found, read or downloaded; the message says what to pass."""


@dataclass(frozen=True)
class WeightsSource:
    """Where an encoder's weights come from.

    Attributes:
        path: the file to read, or None for random weights.
        label: what stores record as ``weights``: the tag (``"openai"``), the file's name, ``"random"``.
        sha256: hex SHA-256 of ``path`` (None for random weights).
    """

    path: Path | None
    label: str
    sha256: str | None

    @property
    def random(self) -> bool:
        return self.path is None


@dataclass(frozen=True)
class CacheSources:
    """How a family finds and downloads a spec's default weights (given by the builder).

    Attributes:
        hf_files: ``(repo_id, filename)`` pairs of the Hugging Face hub, best first.
        hf_cache: the hub cache folder (None: huggingface_hub's default, ``$HF_HUB_CACHE``).
        cached: local download-cache files to try (open_clip's URL cache, torch hub's).
        cache_dirs: the folders searched, for messages.
        host: the download host probed before a download.
        fetch: downloads and returns the file path (called only when the host answers).
        known: ``{sha256 prefix: tag}`` of released files (OpenAI publishes each file's SHA-256,
            torchvision its first 8 hex digits): such a file is recorded as its tag.
    """

    hf_files: tuple = ()
    hf_cache: str | None = None
    cached: tuple = ()
    cache_dirs: tuple = ()
    host: str | None = None
    fetch: Callable[[], str] | None = None
    known: dict = field(default_factory=dict)


def weights_advice(spec: EncoderSpec) -> str:
    """How to make weights for ``spec`` available offline (the end of every weights error)."""
    return (f"set {WEIGHTS_DIR_ENV} to a folder holding {spec.weights_file!r} (or its open_clip / Hugging Face "
            f".bin / .safetensors), or pass --weights PATH (weights=PATH); '--weights random' is for tests only")


def weights_stem(spec: EncoderSpec) -> str:
    """``RN50x4`` for ``RN50x4.pt``: the name of the alternatives looked for beside the file."""
    name = spec.weights_file or spec.name
    for suffix in _WEIGHT_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def find_in_folder(folder: Path) -> Path | None:
    """The checkpoint file of a snapshot folder (:data:`FOLDER_FILES` order, then a single
    ``.safetensors`` / ``.bin`` / ``.pth`` / ``.pt``), or None."""
    for name in FOLDER_FILES:
        if (folder / name).is_file():
            return folder / name
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)
    return found[0] if len(found) == 1 else None


def find_in_hf_cache(cache_dir, hf_files) -> Path | None:
    """A file of ``hf_files`` present in the hub cache ``cache_dir`` (None: the default cache);
    reads the cache only (``HF_HUB_OFFLINE`` semantics)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for repo, filename in hf_files:
        hit = try_to_load_from_cache(repo, filename, cache_dir=None if cache_dir is None else str(cache_dir))
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def is_hf_cache(folder: Path) -> bool:
    """True for a Hugging Face hub cache folder (it holds ``models--ORG--NAME`` folders)."""
    return any(p.name.startswith("models--") for p in folder.iterdir() if p.is_dir())


def search_weights_dir(spec: EncoderSpec, folder: Path, sources: CacheSources) -> Path | None:
    """The weights of ``spec`` in a user's weights folder: ``<file>`` (``RN50x4.pt``),
    ``<stem>.safetensors`` / ``<stem>.bin``, a snapshot folder ``<stem>/``, or the hub-cache entry."""
    stem = weights_stem(spec)
    for name in (spec.weights_file, f"{stem}.safetensors", f"{stem}.bin", f"{stem}.pth"):
        if name and (folder / name).is_file():
            return folder / name
    if (folder / stem).is_dir():
        hit = find_in_folder(folder / stem)
        if hit is not None:
            return hit
    if folder.is_dir() and is_hf_cache(folder):
        return find_in_hf_cache(folder, sources.hf_files)
    return None


def _expected_names(spec: EncoderSpec) -> str:
    stem = weights_stem(spec)
    return f"{spec.weights_file!r} (or {stem}.safetensors, {stem}.bin, a {stem}/ snapshot folder, a hub cache)"


def host_reachable(host: str | None, timeout: float = 3.0) -> bool:
    """False when offline: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` set, or ``host`` does not
    resolve within ``timeout`` seconds. A configured proxy counts as online (it resolves names)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or \
            os.environ.get("TRANSFORMERS_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    if host is None:
        return False
    if any(os.environ.get(v) for v in ("https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")):
        return True
    result = []

    def resolve():
        try:
            result.append(bool(socket.getaddrinfo(host, 443)))
        except OSError:
            result.append(False)

    t = threading.Thread(target=resolve, daemon=True)
    t.start()
    t.join(timeout)
    return bool(result and result[0])


def _source(path: Path, label: str | None = None, known: dict | None = None) -> WeightsSource:
    """The source of a file: labelled ``label``, else the tag of a released file it is, else its name."""
    path = Path(path)
    digest = sha256_file(path)
    if label is None:
        label = next((tag for prefix, tag in (known or {}).items() if digest.startswith(prefix)), path.name)
    return WeightsSource(path, label, digest)


def locate_weights(spec: EncoderSpec, weights, sources_for_tag: Callable[[str], CacheSources]) -> WeightsSource:
    """Decide which file ``spec``'s weights are read from (see the module docstring).

    Args:
        weights: None (the default places), a file or folder path, a pretrained tag, or ``"random"``.
        sources_for_tag: the family's caches and download of a tag (raises
            :class:`WeightsUnavailableError` for an unknown tag).

    Raises:
        WeightsUnavailableError: nothing found where it was looked for (offline: at once).
    """
    if weights is not None and str(weights) == RANDOM:
        return WeightsSource(None, RANDOM, None)
    tag = spec.weights_tag
    default_sources = sources_for_tag(tag) if tag else CacheSources()
    if weights is not None:
        w = Path(str(weights))
        if w.is_file():
            return _source(w, known=default_sources.known)
        if w.is_dir():
            hit = search_weights_dir(spec, w, default_sources) or find_in_folder(w)
            if hit is None:
                raise WeightsUnavailableError(f"encoder {spec.name!r}: no weights in folder {w}: expected "
                                              f"{_expected_names(spec)}; {weights_advice(spec)}")
            return _source(hit, known=default_sources.known)
        if os.sep in str(weights) or str(weights).endswith(_WEIGHT_SUFFIXES):
            raise WeightsUnavailableError(f"encoder {spec.name!r}: weights file {w} does not exist; "
                                          f"{weights_advice(spec)}")
        tag = str(weights)
    sources = default_sources if tag == spec.weights_tag else sources_for_tag(tag)
    wdir = os.environ.get(WEIGHTS_DIR_ENV)
    if wdir and tag == spec.weights_tag and spec.weights_file:
        hit = search_weights_dir(spec, Path(wdir), sources) if Path(wdir).is_dir() else None
        if hit is None:
            raise WeightsUnavailableError(f"encoder {spec.name!r}: no weights in {WEIGHTS_DIR_ENV}={wdir}: expected "
                                          f"{_expected_names(spec)}; {weights_advice(spec)}")
        return _source(hit, known=sources.known)
    hit = find_in_hf_cache(sources.hf_cache, sources.hf_files) or next(
        (Path(p) for p in sources.cached if Path(p).is_file()), None)
    if hit is not None:
        return _source(hit, tag)
    searched = ", ".join(str(d) for d in sources.cache_dirs) or "no cache"
    if sources.fetch is None or not host_reachable(sources.host):
        raise WeightsUnavailableError(
            f"encoder {spec.name!r}: {'offline and ' if sources.fetch else ''}no local {spec.weights_file!r} "
            f"({WEIGHTS_DIR_ENV} is not set; "
            f"searched {searched}); {weights_advice(spec)}")
    logger.info("encoder %s: downloading weights %r", spec.name, tag)
    try:
        return _source(Path(sources.fetch()), tag)
    except Exception as e:  # network or hub errors
        raise WeightsUnavailableError(f"encoder {spec.name!r}: could not download weights {tag!r} ({e}); "
                                      f"{weights_advice(spec)}") from e


def is_torchscript_archive(path: Path) -> bool:
    """True for a TorchScript zip (OpenAI's CLIP releases): it holds ``constants.pkl`` / ``code/``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("/constants.pkl") or n == "constants.pkl" or "/code/" in n for n in z.namelist())


def read_state_dict(path: str | os.PathLike) -> dict:
    """The tensors of a weights file of any accepted format, as a flat state dict on the CPU.

    OpenAI's extra entries (``input_resolution``, ``context_length``, ``vocab_size``), a
    ``state_dict`` / ``model`` wrapper and a ``module.`` prefix (DataParallel) are removed.

    Raises:
        DataFormatError: the file is none of the accepted formats (names the file).
    """
    import torch

    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        elif is_torchscript_archive(path):
            with warnings.catch_warnings():  # torch >= 2.9 marks TorchScript deprecated; OpenAI's files are in it
                warnings.simplefilter("ignore", FutureWarning)
                state = torch.jit.load(str(path), map_location="cpu").state_dict()
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated files, pickles holding objects, foreign formats
        raise DataFormatError(path, None, None, f"is not a weights file (OpenAI TorchScript .pt, state-dict "
                                                f".bin/.pth/.pt or .safetensors): {e}") from None
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not state:
        raise DataFormatError(path, None, None, f"holds {type(state).__name__}, not a state dict of tensors")
    state = {(k[7:] if k.startswith("module.") else k): v for k, v in state.items()}
    for key in _OPENAI_EXTRA_KEYS:
        state.pop(key, None)
    return state


def load_into(module, state: dict, path, spec: EncoderSpec) -> None:
    """``module.load_state_dict(state)`` strictly; a file of another architecture is one error
    naming the file, the architecture expected and the first disagreeing keys."""
    import torch

    own = module.state_dict()
    for k, v in list(state.items()):  # OpenAI stores logit_scale as a 0-d or 1-d tensor
        if k in own and own[k].numel() == v.numel() == 1 and own[k].shape != v.shape:
            state[k] = v.reshape(own[k].shape)
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing (first {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
        if shapes:
            k = shapes[0]
            parts.append(f"{len(shapes)} of another shape (first {k}: {tuple(state[k].shape)}, expected "
                         f"{tuple(own[k].shape)})")
        raise WeightsUnavailableError(f"encoder {spec.name!r}: {path} does not hold {spec.architecture} weights: "
                                      f"{'; '.join(parts)} entries; {weights_advice(spec)}")
    with torch.no_grad():
        module.load_state_dict(state, strict=True)
