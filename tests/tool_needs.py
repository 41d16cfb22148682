"""What a test needs beyond the ``dev`` extra that ``make venv`` installs: a tool ``make test``
installs (promtool, kustomize) or another extra (``otel``). In the environment ``make venv``
builds, a test that needs one is skipped with the reason; under ``make test``, which provides
them all and sets ``CONTINUST_FULL_SUITE=1``, a missing one fails the test instead, so nothing is
skipped there unseen."""

from __future__ import annotations

import importlib.util
import os

import pytest


def require(what: str, present: bool, provided_by: str) -> None:
    """Skip (or, in the full suite, fail) unless ``present``."""
    if present:
        return
    message = f"{what} is missing: {provided_by} provides it"
    if os.environ.get("CONTINUST_FULL_SUITE"):
        pytest.fail(message)
    pytest.skip(message)


def require_module(module: str, provided_by: str) -> None:
    require(f"the {module} package", importlib.util.find_spec(module) is not None, provided_by)
