"""The pipeline in Python (streams/plan/python_front.py) is the pipeline file by other means: the
same pipeline from either front end, the same errors, a stream's chain per table, and the worker
loads a Python file's App as it loads a TOML file."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from streams.plan.errors import PipelineError
from streams.plan.pipeline import load_pipeline
from streams.plan.python_front import App, load_any_pipeline, session, sliding, tumbling
from tests.unit.chain_functions.shop import in_cents, is_big, items

TOML = """
[app]
id = "shop"
commit_interval = "2s"

[[source]]
name = "purchases"
topics = ["purchases", "refunds"]
key = "account.id"
timestamp = "ts"
partitioned_by_key = true
idle_after = "5s"

[[table]]
name = "big"
source = "purchases"
window = { type = "tumbling", size = "1m", grace = "10s", retention = "1h" }
aggregate = { n = "count()", cents = "sum(cents)" }
emit = "final"
output = "big-purchases"
operators = [
  { filter = "tests.unit.chain_functions.shop:is_big" },
  { map = "tests.unit.chain_functions.shop:in_cents" },
]

[[table]]
name = "lines"
source = "purchases"
window = { type = "sliding", size = "1m", slide = "30s", grace = "10s" }
aggregate = { n = "count()" }
operators = [{ flat_map = "tests.unit.chain_functions.shop:items" }]

[[table]]
name = "visits"
source = "purchases"
window = { type = "session", gap = "30s" }
aggregate = { n = "count()", last = "last(amount)" }
idle_timeout = "1m"
"""


def python_app() -> App:
    app = App("shop", commit_interval="2s")
    purchases = app.source(
        "purchases",
        topics=["purchases", "refunds"],
        key="account.id",
        timestamp="ts",
        partitioned_by_key=True,
        idle_after=timedelta(seconds=5),
    )
    big = purchases.filter(is_big)
    big.map(in_cents).table(
        "big",
        window=tumbling("1m", grace="10s", retention=timedelta(hours=1)),
        aggregate={"n": "count()", "cents": "sum(cents)"},
        emit="final",
        output="big-purchases",
    )
    purchases.flat_map(items).table(
        "lines", window=sliding("1m", "30s", grace=10_000), aggregate={"n": "count()"}
    )
    purchases.table(
        "visits", window=session("30s"), aggregate={"n": "count()", "last": "last(amount)"}, idle_timeout="1m"
    )
    return app


def test_the_python_app_plans_the_pipeline_the_file_gives(tmp_path: Path) -> None:
    path = tmp_path / "shop.toml"
    path.write_text(TOML)
    from_file = load_pipeline(path)
    from_python = python_app().plan(path)
    assert from_python == from_file
    assert [len(t.operators) for t in from_python.tables] == [2, 1, 0]  # each table its own chain
    assert from_python.tables[0].operators[0].function is is_big


def test_both_front_ends_give_the_same_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(TOML.replace('size = "1m", slide = "30s"', 'size = "1m", slide = "0s"'))
    with pytest.raises(PipelineError) as from_file:
        load_pipeline(path)
    app = python_app()
    app.tables[1]["window"] = sliding("1m", "0s", grace=10_000)
    with pytest.raises(PipelineError) as from_python:
        app.plan(path)
    assert str(from_python.value) == str(from_file.value)
    assert "table 'lines' window" in str(from_file.value)


def test_the_worker_loads_the_app_a_python_file_defines(tmp_path: Path) -> None:
    (tmp_path / "rules_nearby.py").write_text("def positive(p):\n    return p['amount'] > 0\n")
    path = tmp_path / "pipeline.py"
    path.write_text(
        "from streams.plan.python_front import App, tumbling\n"
        "from rules_nearby import positive\n"
        "app = App('py')\n"
        "app.source('s', topics=['t'], key='user').filter(positive).table(\n"
        "    'counts', window=tumbling('1m'), aggregate={'n': 'count()'})\n"
    )
    pipeline = load_any_pipeline(path)
    assert (pipeline.app.id, pipeline.path, pipeline.tables[0].operators[0].name) == (
        "py",
        str(path),
        "rules_nearby:positive",
    )
    toml = tmp_path / "same.toml"
    toml.write_text(
        "[app]\nid = 'py'\n[[source]]\nname = 's'\ntopics = ['t']\nkey = 'user'\n"
        "[[table]]\nname = 'counts'\nsource = 's'\nwindow = { type = 'tumbling', size = '1m' }\n"
        "aggregate = { n = 'count()' }\noperators = [{ filter = 'rules_nearby:positive' }]\n"
    )
    assert replace(load_any_pipeline(toml), path=str(path)) == pipeline


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("x = 1\n", "defines no App"),
        (
            "from streams.plan.python_front import App\na = App('a')\nb = App('b')\n",
            "defines several Apps (a, b); name one `app`",
        ),
        ("raise RuntimeError('boom')\n", "failed to import: RuntimeError: boom"),
        (
            "from streams.plan.python_front import App\napp = App('a')\n",
            "at least one [[source]] is required",
        ),
    ],
)
def test_a_python_file_without_one_valid_app_is_refused_in_one_line(tmp_path: Path, text: str, problem: str):
    path = tmp_path / "broken.py"
    path.write_text(text)
    with pytest.raises(PipelineError) as error:
        load_any_pipeline(path)
    assert problem in str(error.value) and str(path) in str(error.value)
    with pytest.raises(PipelineError, match="does not exist"):
        load_any_pipeline(tmp_path / "missing.py")


def test_the_readme_example_plans(tmp_path: Path) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start = readme.index("```python\n# shop.py\n") + len("```python\n")
    path = tmp_path / "shop.py"
    path.write_text(readme[start : readme.index("```", start)])
    pipeline = load_any_pipeline(path)
    assert [(t.name, [op.label for op in t.operators]) for t in pipeline.tables] == [
        (
            "big_purchases_per_user",
            ["filter(continust_pipeline_shop:is_big)", "map(continust_pipeline_shop:in_cents)"],
        ),
        ("visits", []),
    ]


def test_the_readme_harness_example_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()

    def block(opening: str) -> str:
        start = readme.index(opening) + len("```python\n")
        return readme[start : readme.index("```", start)]

    (tmp_path / "shop.py").write_text(block("```python\n# shop.py\n"))
    (tmp_path / "test_shop.py").write_text(block("```python\nfrom agents.harness import"))
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict[str, object] = {}
    exec((tmp_path / "test_shop.py").read_text(), namespace)
    namespace["test_big_purchases_are_counted_in_cents"]()  # type: ignore[operator]
