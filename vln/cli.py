"""What every command-line script shares: its parser's description and help format.

``script_parser(__doc__)`` gives a parser whose description is the first line of the script's
docstring, and whose ``--help`` shows each flag's default once: appended as ``(default: X)``
unless the help text already says what the default is. Boolean switches show no default (their
absence is the default).
"""
from __future__ import annotations

import argparse


class HelpFormatter(argparse.HelpFormatter):
    """Appends ``(default: X)`` to a flag's help unless the help already names its default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text.lower() or action.default in (None, argparse.SUPPRESS):
            return text
        if action.nargs == 0:  # store_true / store_false / BooleanOptionalAction: no value to show
            return text
        if not action.option_strings:  # positional: required, no default
            return text
        return text + " (default: %(default)s)"


def first_line(doc: str | None) -> str:
    """The first non-empty line of a docstring (a script's one-line description)."""
    for line in (doc or "").splitlines():
        if line.strip():
            return line.strip()
    return ""


def script_parser(doc: str | None, **kwargs) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` described by the first line of ``doc`` with :class:`HelpFormatter`."""
    kwargs.setdefault("formatter_class", HelpFormatter)
    return argparse.ArgumentParser(description=first_line(doc), **kwargs)
