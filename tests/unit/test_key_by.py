"""A key computed by a function (``key_by``): windows by the computed key, through the
repartition topic; a function that fails or gives no usable key dead-letters the record as
user_error at the source; the file names it as "module:function" and refuses it with a key
field or partitioned_by_key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.harness import Input, run_pipeline
from streams.plan.errors import PipelineError
from streams.plan.pipeline import load_pipeline
from streams.plan.python_front import App, tumbling


def domain(purchase: dict[str, Any]) -> Any:
    if purchase["email"] == "nobody":
        return None  # no key
    return purchase["email"].split("@")[1].lower()


def test_windows_are_keyed_by_what_the_function_computes() -> None:
    app = App("by-domain")
    app.source("purchases", topics=["purchases"], key=domain, timestamp="ts").table(
        "spend", window=tumbling("1m", retention="1h"), aggregate={"n": "count()", "spent": "sum(amount)"}
    )
    emails = ["a@Shop.io", "b@shop.io", "c@other.org", "broken", "nobody"]
    result = run_pipeline(
        app,
        [
            Input("purchases", {"email": e, "ts": 1_000 * i, "amount": i}, key=e, partition=i % 2)
            for i, e in enumerate(emails)
        ],
        partitions=2,
    )
    assert result.windows["spend"] == {
        ("shop.io", 0, 60_000): {"n": 2, "spent": 1},
        ("other.org", 0, 60_000): {"n": 1, "spent": 2},
    }
    letters = sorted(
        (letter.table, letter.headers["continust-operator"], letter.headers["continust-error-type"])
        for letter in result.dead_letters
    )
    label = f"key_by({__name__}:domain)".encode()
    assert letters == [("", label, b"IndexError"), ("", label, b"TypeError")]


def write(tmp_path: Path, source: str) -> Path:
    path = tmp_path / "k.toml"
    path.write_text(
        f'[app]\nid = "k"\n[[source]]\nname = "s"\ntopics = ["t"]\n{source}\n'
        '[[table]]\nname = "t"\nsource = "s"\nwindow = { type = "tumbling", size = "1m" }\n'
        'aggregate = { n = "count()" }\n'
    )
    return path


def test_the_file_names_the_key_function_and_refuses_it_where_it_cannot_be(tmp_path: Path) -> None:
    source = load_pipeline(write(tmp_path, 'key_by = "tests.unit.chain_functions.shop:account_of"')).sources[
        0
    ]
    assert source.key == "" and source.key_by is not None
    assert source.key_by.function({"email": "x@A.b"}) == "a.b"
    for text, problem in [
        ('key = "user"\nkey_by = "tests.unit.chain_functions.shop:account_of"', "both name the key"),
        (
            'key_by = "tests.unit.chain_functions.shop:account_of"\npartitioned_by_key = true',
            "go through the repartition topic",
        ),
        ('key_by = "nowhere:f"', "cannot import module 'nowhere'"),
        ("", "`key` is required"),
    ]:
        with pytest.raises(PipelineError, match="source 's'") as error:
            load_pipeline(write(tmp_path, text))
        assert problem in str(error.value), text
