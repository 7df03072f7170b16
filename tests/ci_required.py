"""Skips that CI does not accept: under ``CI=true`` a missing requirement fails the test.

Locally a test may skip when the browser, ``../shared/data`` or an installed extra is missing (the
skip says what is missing and how to get it). CI installs all of them (``.ci/run`` installs
Debian's ``chromium``, ``make test`` installs the ``dev`` and ``rl`` extras, ``../shared`` is
present), so there a skip would only hide a test that never ran, e.g. the replay viewer's XSS
check: :func:`skip_or_fail` turns it into a failure.
"""
from __future__ import annotations

import os
from types import ModuleType
from typing import NoReturn

import pytest


def on_ci() -> bool:
    """True when the environment says ``CI=true`` (as GitHub Actions, GitLab CI and our runner set)."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def skip_or_fail(reason: str) -> NoReturn:
    """Skip the test (or, called at import, its module) with ``reason``; under ``CI=true`` fail instead."""
    if on_ci():
        pytest.fail(f"CI=true requires this test to run, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def import_or_skip(module: str, reason: str) -> ModuleType:
    """``pytest.importorskip`` that fails under ``CI=true`` (see :func:`skip_or_fail`)."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as e:
        skip_or_fail(f"{reason} ({e})")
