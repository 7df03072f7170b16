"""Under CI=true a test that cannot run fails; locally it skips with the reason."""
from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped

from ci_required import import_or_skip, skip_or_fail


@pytest.mark.parametrize("value", ["", "false", "0"])
def test_skips_locally_with_the_reason(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(Skipped, match="no Chromium at /x"):
        skip_or_fail("no Chromium at /x")
    with pytest.raises(Skipped, match="extra missing"):
        import_or_skip("clipvil_no_such_module", "extra missing")


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_fails_under_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(Failed, match="CI=true requires this test to run, but no Chromium at /x"):
        skip_or_fail("no Chromium at /x")
    with pytest.raises(Failed, match="extra missing"):
        import_or_skip("clipvil_no_such_module", "extra missing")
    assert import_or_skip("json", "stdlib").dumps([1]) == "[1]"
