"""A test needing a tool or extra the ``dev`` environment lacks is skipped there with the reason,
and fails under ``make test`` (``CONTINUST_FULL_SUITE=1``), which provides them all."""

from __future__ import annotations

import pytest

from tests.tool_needs import require, require_module


def test_a_missing_tool_skips_outside_the_full_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CONTINUST_FULL_SUITE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="promtool is missing: make prometheus provides it"):
        require("promtool", False, "make prometheus")
    require("promtool", True, "make prometheus")  # present: nothing happens


def test_a_missing_tool_fails_the_full_suite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTINUST_FULL_SUITE", "1")
    with pytest.raises(
        pytest.fail.Exception, match="the no_such_module_here package is missing: nothing provides it"
    ):
        require_module("no_such_module_here", "nothing")
    require_module("orjson", "the core dependencies")
