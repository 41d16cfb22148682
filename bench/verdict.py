"""Whether a contender's results equal the reference: the same windows, and per window the same
count and the same sum (up to float rounding, since contenders add in different orders), with
nothing else wrong seen while reading them back (:class:`Readback`: a window emitted twice under
final emission, late or invalid events counted by a continust worker). An empty reference is a
failure too: a check of nothing proves nothing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from bench.windowing import Results


@dataclass
class Readback:
    """What was read back from a contender: its final windows (None when they are read at
    another moment, see :meth:`bench.contenders.Contender.inspect`) and what was wrong."""

    results: Results | None = None
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verdict:
    ok: bool
    windows: int
    """Windows in the contender's results."""
    expected: int
    """Windows in the reference."""
    problems: list[str] = field(default_factory=list)
    """At most a few examples of what differs, for the log and the report."""

    def summary(self) -> str:
        if self.ok:
            return f"correct ({self.windows} windows)"
        return f"FAILED ({self.windows} windows, expected {self.expected}): " + "; ".join(self.problems)


def judge(got: Results, expected: Results, examples: int = 3, also: Sequence[str] = ()) -> Verdict:
    """``also``: problems found while reading ``got`` back; any of them fails the verdict."""
    problems: list[str] = []
    if not expected:
        problems.append("the reference has no windows to check (too few events for this emission?)")
    missing = [w for w in expected if w not in got]
    extra = [w for w in got if w not in expected]
    wrong = [
        w
        for w, (n, total) in expected.items()
        if w in got and (got[w][0] != n or not math.isclose(got[w][1], total, rel_tol=1e-9, abs_tol=1e-6))
    ]
    if missing:
        problems.append(f"{len(missing)} windows missing, e.g. {missing[:examples]}")
    if extra:
        problems.append(f"{len(extra)} unexpected windows, e.g. {extra[:examples]}")
    if wrong:
        shown = [f"{w}: got {got[w]}, expected {expected[w]}" for w in wrong[:examples]]
        problems.append(f"{len(wrong)} windows with a wrong count or sum, e.g. {shown}")
    problems.extend(also)
    return Verdict(ok=not problems, windows=len(got), expected=len(expected), problems=problems)
