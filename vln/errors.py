"""The toolkit's error hierarchy, in one place.

Every error names what went wrong and where (file, record, field) so that a user can fix the
input without reading our code. All errors derive from :class:`VLNError`.
"""
from __future__ import annotations


class VLNError(Exception):
    """Base class of every error raised by the toolkit."""


class DataFormatError(VLNError, ValueError):
    """A data file (graph, dataset, feature store, submission) is malformed.

    Args:
        path: the file that is wrong.
        record: which record inside it (an index, an id), or ``None`` for the whole file.
        field: which field of the record, or ``None``.
        problem: what is wrong with it.
    """

    def __init__(self, path, record=None, field=None, problem: str = "is malformed"):
        self.path = str(path)
        self.record = record
        self.field = field
        self.problem = problem
        where = self.path
        if record is not None:
            where += f", record {record}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {problem}")


class UnknownScanError(VLNError, KeyError):
    """A scan id that the connectivity directory does not hold."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownViewpointError(VLNError, KeyError):
    """A viewpoint id that is not in its scan's connectivity graph."""

    def __str__(self) -> str:
        return str(self.args[0])


class ExcludedViewpointError(VLNError, ValueError):
    """A viewpoint that exists but is excluded from the connectivity graph."""


class InvalidActionError(VLNError, ValueError):
    """An action index outside the current set of navigable locations or candidates."""


class SimulatorStateError(VLNError, RuntimeError):
    """A simulator method called in the wrong order or with the wrong batch size."""


class NotConnectedError(VLNError, ValueError):
    """Two consecutive viewpoints of a path or trajectory are not joined by an edge."""


class DependencyNotInstalled(VLNError, ImportError):
    """An optional back-end or library is missing; the message says how to install it."""


def run_script(main, errors: tuple = (VLNError, FileNotFoundError)) -> None:
    """Run a command-line script's ``main()``: an expected input error in ``errors`` exits with
    status 1 and ``error: <message>`` (the message names the file, record and field) instead of a
    traceback; anything else propagates."""
    import sys

    try:
        main()
    except errors as e:
        sys.exit(f"error: {e}")
