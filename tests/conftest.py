"""Hypothesis for the whole suite: no deadline (a slow machine is not a failure) and, in
``make test``, a fixed seed, so a run passes or fails for a reason and the same way every time;
``CONTINUST_HYPOTHESIS_EXPLORE=1`` draws new examples instead."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("suite", deadline=None, derandomize=True, database=None)
settings.register_profile("explore", deadline=None)
settings.load_profile("explore" if os.environ.get("CONTINUST_HYPOTHESIS_EXPLORE") else "suite")
