"""``--help`` of every script reads as a person needs it: a one-line description, every flag in its
real form with help text, each default stated once (never "(default: None)")."""
from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import pytest

from vln.cli import first_line

SCRIPTS = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "scripts").glob("*.py") if p.stem != "__init__")


def test_every_script_is_covered():
    assert {"train_agent", "evaluate", "export_submission", "make_world", "demo"} <= set(SCRIPTS)


def help_of(name: str, monkeypatch, capsys) -> tuple[argparse.ArgumentParser, str]:
    """Run ``main(["--help"])`` of ``scripts/<name>.py``; returns (the parser, the printed help)."""
    module = importlib.import_module(f"scripts.{name}")
    seen = []
    original = argparse.ArgumentParser.print_help

    def record(self, file=None):
        seen.append(self)
        return original(self, file)

    monkeypatch.setattr(argparse.ArgumentParser, "print_help", record)
    with pytest.raises(SystemExit) as exit_:
        module.main(["--help"])
    assert exit_.value.code in (0, None)
    assert len(seen) == 1
    return seen[0], capsys.readouterr().out


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_has_a_description_and_every_flag_its_help_and_default_once(name, monkeypatch, capsys):
    parser, text = help_of(name, monkeypatch, capsys)
    module = importlib.import_module(f"scripts.{name}")
    assert parser.description and parser.description == first_line(module.__doc__), name
    assert "(default: None)" not in text
    assert not re.search(r"\b[a-z]+_[a-z_]+=(True|False)\b", text), "flags must be shown as --flag-name"
    in_required_group = {id(a) for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
    formatter = parser._get_formatter()
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        shown = formatter._expand_help(action) if action.help else ""
        where = f"{name}: {action.option_strings or action.dest}"
        assert shown.strip(), f"{where} has no help text"
        for opt in action.option_strings:
            assert opt.startswith("--") and "_" not in opt, f"{where}: flags are --words-with-dashes"
        assert shown.lower().count("default") <= 1, f"{where} states its default twice: {shown!r}"
        takes_value = action.option_strings and action.nargs != 0
        if takes_value and not action.required and id(action) not in in_required_group:
            assert shown.lower().count("default") == 1, f"{where} does not say its default: {shown!r}"
