"""The window code (``windows/``) is pure: it reads no clock, since stream time depends on the
events alone and a caller that lets it follow a clock passes the time in; and it imports nothing
of continust outside ``windows``. Checked on the source, so it stays so."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

import windows

WINDOWS = Path(windows.__file__).parent
CLOCK_MODULES = {"time", "datetime"}
CLOCK_OWNERS = {"time", "datetime", "date"}
CLOCK_READS = {"time", "time_ns", "monotonic", "monotonic_ns", "perf_counter", "now", "utcnow", "today"}
OURS = {"agents", "streams", "bench", "tests"}


def imports_from(tree: ast.AST, packages: set[str]) -> list[str]:
    """Every absolute import in ``tree`` of a module of ``packages``, as ``line: import name``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: import {name}" for name in names if name.split(".")[0] in packages]
    return found


def clock_reads(source: str) -> list[str]:
    """Every import of a clock module and every call such as ``time.time()`` or
    ``datetime.now()``, as ``line: what``."""
    tree = ast.parse(source)
    found = imports_from(tree, CLOCK_MODULES)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
            continue
        owner = ast.unparse(node.func.value)
        if node.func.attr in CLOCK_READS and owner.split(".")[-1] in CLOCK_OWNERS:
            found.append(f"{node.lineno}: {owner}.{node.func.attr}()")
    return found


def imports_of_ours(source: str) -> list[str]:
    """Every import of a continust package other than ``windows``."""
    return imports_from(ast.parse(source), OURS)


def offenders(check: Callable[[str], list[str]]) -> dict[str, list[str]]:
    """What ``check`` finds in each module of ``windows/`` that it finds anything in."""
    modules = sorted(WINDOWS.rglob("*.py"))
    assert len(modules) > 5, f"no window code found under {WINDOWS}"
    found = {str(p.relative_to(WINDOWS.parent)): check(p.read_text()) for p in modules}
    return {path: what for path, what in found.items() if what}


@pytest.mark.parametrize(
    "snippet",
    [
        "import time\n",
        "from time import monotonic\n",
        "import datetime as dt\n",
        "from datetime import datetime\n",
        "t = time.time()\n",
        "t = time.monotonic_ns()\n",
        "t = datetime.now()\n",
        "t = datetime.datetime.utcnow()\n",
        "t = date.today()\n",
    ],
)
def test_the_scan_finds_clock_reads(snippet: str) -> None:
    assert clock_reads(snippet)


@pytest.mark.parametrize(
    "snippet", ["import agents.clock\n", "from streams.plan.pipeline import TableSpec\n"]
)
def test_the_scan_finds_imports_of_ours(snippet: str) -> None:
    assert imports_of_ours(snippet)
    assert not imports_of_ours("from windows.spec import Window\nimport heapq\n")


def test_window_code_reads_no_clock() -> None:
    assert offenders(clock_reads) == {}


def test_window_code_imports_nothing_of_ours_outside_windows() -> None:
    assert offenders(imports_of_ours) == {}
