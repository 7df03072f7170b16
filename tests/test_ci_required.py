"""Under CI=true a test that cannot run fails; locally it skips with the reason."""
from __future__ import annotations

import pytest
from _pytest.outcomes import Failed, Skipped

from ci_required import import_or_skip, skip_or_fail


@pytest.mark.parametrize("value, outcome", [("", Skipped), ("false", Skipped), ("0", Skipped),
                                            ("true", Failed), ("TRUE", Failed), ("1", Failed)])
def test_skips_locally_and_fails_under_ci(monkeypatch, value, outcome):
    monkeypatch.setenv("CI", value)
    with pytest.raises(outcome, match="no Chromium at /x"):
        skip_or_fail("no Chromium at /x")
    with pytest.raises(outcome, match="extra missing"):
        import_or_skip("clipvil_no_such_module", "extra missing")
    assert import_or_skip("json", "stdlib").dumps([1]) == "[1]"


def test_the_ci_failure_says_why(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(Failed, match="CI=true requires this test to run, but no Chromium"):
        skip_or_fail("no Chromium at /x")
