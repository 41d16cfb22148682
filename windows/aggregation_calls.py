"""Aggregation calls as a pipeline writes them (``count()``, ``sum(amount)``,
``percentile(latency_ms, 0.95)``, ...) parsed into :class:`windows.aggregates.Aggregation`s."""

from __future__ import annotations

import re

from windows.aggregates import FIELD_AGGREGATIONS, Aggregation, Count
from windows.sketches import CountDistinct, Percentile

ALLOWED = "count(), sum(f), min(f), max(f), avg(f), first(f), last(f), percentile(f, q), count_distinct(f)"
_CALL = re.compile(r"^\s*([a-z_]+)\s*\(\s*([A-Za-z_][A-Za-z0-9_.-]*)?\s*\)\s*$")
_PERCENTILE = re.compile(r"^\s*percentile\s*\(\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*,\s*([0-9.eE+-]+)\s*\)\s*$")


def parse_aggregation(text: str) -> Aggregation:
    """Parse ``count()``, ``fn(field)`` or ``percentile(field, q)``; raise ``ValueError``
    naming what is allowed."""
    percentile = _PERCENTILE.match(text)
    if percentile is not None:
        try:
            q = float(percentile[2])
        except ValueError:
            raise ValueError(f"percentile's q must be a number from 0 to 1, got {percentile[2]!r}") from None
        if not 0 <= q <= 1:
            raise ValueError(f"percentile's q must be from 0 to 1, got {q:g}")
        return Percentile(percentile[1], q)
    match = _CALL.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not an aggregation call; allowed: {ALLOWED}")
    fn, field = match.groups()
    if fn == "percentile":
        raise ValueError(
            f"percentile takes a field and a quantile, like percentile(latency_ms, 0.95), got {text!r}"
        )
    if fn == "count_distinct":
        if field is None:
            raise ValueError("count_distinct() needs a field, like count_distinct(user)")
        return CountDistinct(field)
    if fn == "count":
        if field is not None:
            raise ValueError(f"count() takes no field, got {text!r}")
        return Count()
    if fn not in FIELD_AGGREGATIONS:
        raise ValueError(f"unknown aggregation {fn!r}; allowed: {ALLOWED}")
    if field is None:
        raise ValueError(f"{fn}() needs a field, like {fn}(amount)")
    return FIELD_AGGREGATIONS[fn](field)
