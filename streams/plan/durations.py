"""Durations in the pipeline file: ``"500ms"``, ``"10s"``, ``"1m"``, ``"1h"``, ``"2d"``, or a
bare integer meaning milliseconds. Always returned as integer milliseconds."""

from __future__ import annotations

import re

UNITS_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"^\s*(\d+)\s*(ms|s|m|h|d)\s*$")


def parse_duration(value: object) -> int:
    """Parse a duration to integer milliseconds; raise ``ValueError`` saying what is allowed."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value}")
        return value
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match:
            return int(match.group(1)) * UNITS_MS[match.group(2)]
    raise ValueError(
        f"{value!r} is not a duration; write a whole number with a unit "
        f'({", ".join(UNITS_MS)}), like "10s" or "1m"'
    )
