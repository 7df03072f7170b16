"""Configuration dataclasses: the command line generated from them, ``params.json``, the resume check.

A trainer's settings are one dataclass whose fields carry their help text::

    @dataclass
    class ToyConfig:
        lr: float = setting(1e-3, "Adam learning rate")
        iters: int = setting(100, "training iterations", may_change_on_resume=True)
        progress: bool = setting(True, "progress bar")        # -> --no-progress

    cfg, given = parse_config(ToyConfig, argv, "Train the toy model.")

Flags are the field names with dashes (``batch_size`` -> ``--batch-size``); a ``bool`` field that
defaults to True becomes ``--no-<name>``, one that defaults to False ``--<name>``. ``given`` is the
set of fields the user typed, which :func:`resume_config` compares with a run's saved
``params.json``: a resumed run keeps its saved settings, and a typed flag that differs from them is
refused (:class:`ConfigMismatchError`) unless its field is marked ``may_change_on_resume``.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import types
import typing
from pathlib import Path

from vln.cli import HelpFormatter
from vln.errors import DataFormatError, VLNError
from vln.io_utils import atomic_write_json, read_json


class ConfigMismatchError(VLNError, ValueError):
    """Settings given for a run that differ from those it was started with (one-line message)."""

    @classmethod
    def from_differences(cls, run: str | os.PathLike, diffs: list[tuple[str, object, object]]) -> "ConfigMismatchError":
        """``diffs``: ``(field, saved, given)`` triples, as :func:`config_differences` returns."""
        shown = ", ".join(_show_difference(n, old, new) for n, old, new in diffs)
        return cls(f"{run} was started with other settings (see its params.json): {shown}; "
                   "drop these flags to resume it, or pass another --out for a new run")


def setting(default, help: str, *, choices=None, may_change_on_resume: bool = False):
    """A dataclass field with its help text (and choices) for the generated command line.

    ``may_change_on_resume``: the flag may differ from the saved value when a run resumes (the
    iteration budget, the device, the progress bar); every other setting is fixed for a run.
    """
    meta = {"help": help}
    if choices is not None:
        meta["choices"] = tuple(choices)
    if may_change_on_resume:
        meta["may_change_on_resume"] = True
    return dataclasses.field(default=default, metadata=meta)


def flag_name(name: str) -> str:
    """``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _show(value) -> str:
    return "(none)" if value is None else str(value)


def _show_difference(name: str, saved, given) -> str:
    """``--hidden 64 (saved 128)``; a switch as typed: ``--no-progress (saved: on)``."""
    if isinstance(given, bool):
        typed = flag_name(name) if given else "--no-" + name.replace("_", "-")
        return f"{typed} (saved: {'on' if saved else 'off'})"
    return f"{flag_name(name)} {_show(given)} (saved {_show(saved)})"


def cli_flag(cls, name: str) -> str:
    """The flag that sets field ``name`` of ``cls`` as typed: ``--batch-size``, ``--no-progress``."""
    f = {f.name: f for f in dataclasses.fields(cls)}[name]
    if _value_type(cls, f)[1] and _default(f):
        return "--no-" + name.replace("_", "-")
    return flag_name(name)


def _value_type(cls, f: dataclasses.Field):
    """(type used to parse the flag, True when it is a bool switch)."""
    hint = typing.get_type_hints(cls)[f.name]
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if len(args) == 1 else str
    if hint is bool:
        return bool, True
    return (hint if hint in (int, float, str) else str), False


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def build_parser(cls, description: str = "", parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    """An argparse parser with one flag per field of the dataclass ``cls``.

    Help text comes from ``field.metadata["help"]`` (each default shown once), choices from
    ``metadata["choices"]``; the epilog lists the flags that may change when a run resumes. Pass
    ``parser`` to add the flags to an existing parser.
    """
    p = parser or argparse.ArgumentParser(description=description, formatter_class=HelpFormatter)
    changeable = sorted(cli_flag(cls, n) for n in may_change_on_resume(cls))
    if changeable and p.epilog is None:
        p.epilog = ("A resumed run keeps the settings in its params.json; of its flags only these may be given "
                    f"with other values: {', '.join(changeable)}.")
    for f in dataclasses.fields(cls):
        kind, switch = _value_type(cls, f)
        help_text = f.metadata.get("help", "")
        default = _default(f)
        if switch and default:
            p.add_argument("--no-" + f.name.replace("_", "-"), dest=f.name, action="store_false",
                           help=f"turn off: {help_text}")
        elif switch:
            p.add_argument(flag_name(f.name), dest=f.name, action="store_true", help=help_text)
        else:
            p.add_argument(flag_name(f.name), dest=f.name, type=kind, default=default,
                           choices=f.metadata.get("choices"), help=help_text)
    return p


def given_flags(parser: argparse.ArgumentParser, argv) -> set[str]:
    """The fields whose flags appear in ``argv`` (what the user typed, defaults excluded)."""
    saved = {a.dest: a.default for a in parser._actions}
    try:
        for a in parser._actions:
            a.default = argparse.SUPPRESS
        return set(vars(parser.parse_args(argv)))
    finally:
        for a in parser._actions:
            a.default = saved[a.dest]


def parse_config(cls, argv=None, description: str = ""):
    """Parse ``argv`` (default ``sys.argv[1:]``) into ``(cls instance, set of fields typed)``."""
    p = build_parser(cls, description)
    ns = p.parse_args(argv)
    return cls(**vars(ns)), given_flags(p, argv)


def may_change_on_resume(cls) -> set[str]:
    """Fields marked ``may_change_on_resume`` in their metadata."""
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("may_change_on_resume")}


def write_params(path: str | os.PathLike, cfg) -> Path:
    """Write the dataclass ``cfg`` as JSON (one field per line) atomically; returns the path."""
    path = Path(path)
    atomic_write_json(path, dataclasses.asdict(cfg), indent=1)
    return path


def read_params(path: str | os.PathLike, cls) -> dict:
    """The settings saved in ``params.json`` as a dict of ``cls``' fields.

    Raises:
        DataFormatError: not a JSON object, or a key that is no field of ``cls`` (named).
    """
    params = read_json(path)
    if not isinstance(params, dict):
        raise DataFormatError(path, None, None, f"is a JSON {type(params).__name__}, expected an object of settings")
    known = {f.name for f in dataclasses.fields(cls)}
    for key in params:
        if key not in known:
            raise DataFormatError(path, None, key, f"is not a setting of {cls.__name__} (this version knows: "
                                  f"{', '.join(sorted(known))})")
    return params


def config_differences(saved: dict, cfg, names=None, ignore=()) -> list[tuple[str, object, object]]:
    """``(field, saved value, value in cfg)`` for the fields in ``names`` (default: all) that differ.

    Fields absent from ``saved`` (added after the run started) and those in ``ignore`` are skipped.
    """
    names = [f.name for f in dataclasses.fields(cfg)] if names is None else names
    out = []
    for n in names:
        if n in ignore or n not in saved:
            continue
        new = getattr(cfg, n)
        old = saved[n]
        if isinstance(new, tuple):
            new = list(new)
        if old != new:
            out.append((n, old, new))
    return out


def resume_config(saved: dict, cfg, given: set[str] | None = None, run: str | os.PathLike = "the run"):
    """The configuration a resumed run continues with.

    Args:
        saved: the run's saved settings (:func:`read_params`).
        cfg: the settings asked for now.
        given: fields typed on the command line; the others take their saved value. ``None``
            means every field of ``cfg`` counts as given (a configuration built in Python).
        run: the run folder, for the message.

    Returns:
        A new ``cfg``: the saved settings with the given ones that may change applied.

    Raises:
        ConfigMismatchError: a given setting differs from the saved one and is not marked
            ``may_change_on_resume`` (all such settings named in one line).
    """
    names = [f.name for f in dataclasses.fields(cfg)] if given is None else sorted(given)
    diffs = config_differences(saved, cfg, names, ignore=may_change_on_resume(type(cfg)))
    if diffs:
        raise ConfigMismatchError.from_differences(run, diffs)
    merged = {k: v for k, v in saved.items()}
    merged.update({n: getattr(cfg, n) for n in names})
    for f in dataclasses.fields(cfg):
        merged.setdefault(f.name, getattr(cfg, f.name))
    return dataclasses.replace(cfg, **merged)
