"""The pipeline in Python: the same plan the TOML file gives, built by calls.

::

    from streams.plan.python_front import App, tumbling

    app = App("shop", commit_interval="1s")
    purchases = app.source("purchases", topics=["purchases"], key="account.id", timestamp="ts")
    purchases.filter(is_big).map(in_cents).table(
        "big_purchases_per_user",
        window=tumbling("1m", grace="10s"),
        aggregate={"n": "count()", "cents": "sum(cents)"},
        emit="final",
        output="big-purchases",
    )

``continust worker -c shop.py`` runs it: the worker imports the file and plans the :class:`App`
it defines (:func:`load_python_pipeline`). The calls only gather what a pipeline file would
hold, with functions in place of ``"module:function"`` names; :meth:`App.plan` hands that to
the file's own validation (:func:`streams.plan.pipeline.parse_pipeline`), so both front ends give
the same :class:`~streams.plan.pipeline.Pipeline` and the same errors, and the engine cannot
tell them apart. A stream is a value: each ``filter``/``map``/``flat_map`` returns a new one, so
every table has its own chain.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from streams.plan.errors import PipelineError
from streams.plan.operators import callable_name
from streams.plan.pipeline import Pipeline, load_pipeline, parse_pipeline
from windows.custom_aggregation import Custom, UserAggregation

Duration = str | int | timedelta
Payload = dict[str, Any]


def _duration(value: Duration) -> str | int:
    """A duration as the file writes it: ``"10s"``, milliseconds, or a ``timedelta``."""
    if isinstance(value, timedelta):
        return int(value.total_seconds() * 1000)
    return value


def _window(kind: str, grace: Duration, retention: Duration | None, **sizes: Duration) -> dict[str, Any]:
    shape: dict[str, Any] = {"type": kind, **{k: _duration(v) for k, v in sizes.items()}}
    shape["grace"] = _duration(grace)
    if retention is not None:
        shape["retention"] = _duration(retention)
    return shape


def tumbling(size: Duration, *, grace: Duration = 0, retention: Duration | None = None) -> dict[str, Any]:
    """Tumbling windows of ``size`` (README, "Window semantics")."""
    return _window("tumbling", grace, retention, size=size)


def sliding(
    size: Duration, slide: Duration, *, grace: Duration = 0, retention: Duration | None = None
) -> dict[str, Any]:
    """Sliding windows of ``size`` every ``slide``."""
    return _window("sliding", grace, retention, size=size, slide=slide)


def session(gap: Duration, *, grace: Duration = 0, retention: Duration | None = None) -> dict[str, Any]:
    """Session windows closed by ``gap`` without events."""
    return _window("session", grace, retention, gap=gap)


def custom(aggregation: UserAggregation, field: str | None = None) -> Custom:
    """A user's aggregation (:mod:`windows.custom_aggregation`) reading payload ``field``, for a
    table's ``aggregate``: ``aggregate={"spread": custom(Spread(), "amount")}``."""
    return Custom(aggregation, field, callable_name(type(aggregation)))


@dataclass(frozen=True)
class Stream:
    """A source's events, through the steps chained so far (see the module docstring)."""

    app: App = field(repr=False)
    source: str
    steps: tuple[dict[str, Callable[..., Any]], ...] = ()

    def filter(self, function: Callable[[Payload], bool]) -> Stream:
        """Only the events ``function`` is true of go on."""
        return Stream(self.app, self.source, (*self.steps, {"filter": function}))

    def map(self, function: Callable[[Payload], Payload]) -> Stream:
        """Each event goes on with the payload ``function`` returns (a new dict)."""
        return Stream(self.app, self.source, (*self.steps, {"map": function}))

    def flat_map(self, function: Callable[[Payload], Iterable[Payload]]) -> Stream:
        """Each event becomes the events of the payloads ``function`` gives (zero or more)."""
        return Stream(self.app, self.source, (*self.steps, {"flat_map": function}))

    def table(
        self,
        name: str,
        *,
        window: Mapping[str, Any],
        aggregate: Mapping[str, str | Custom],
        emit: str = "update",
        output: str | None = None,
        idle_timeout: Duration | None = None,
    ) -> None:
        """A windowed table of this stream, as a ``[[table]]`` of the file."""
        table: dict[str, Any] = {
            "name": name,
            "source": self.source,
            "window": dict(window),
            "aggregate": dict(aggregate),
            "emit": emit,
            "operators": [dict(step) for step in self.steps],
        }
        if output is not None:
            table["output"] = output
        if idle_timeout is not None:
            table["idle_timeout"] = _duration(idle_timeout)
        self.app.tables.append(table)


class App:
    """A pipeline built by calls (see the module docstring): ``id`` as the ``[app]`` table's,
    ``settings`` its other settings (``commit_interval="1s"``, ``processing_guarantee``, ...)."""

    def __init__(self, id: str, **settings: Any) -> None:
        self.id = id
        self.settings = {k: _duration(v) if isinstance(v, timedelta) else v for k, v in settings.items()}
        self.sources: list[dict[str, Any]] = []
        self.tables: list[dict[str, Any]] = []
        self.sections: dict[str, dict[str, Any]] = {}

    def source(
        self,
        name: str,
        *,
        topics: Iterable[str],
        key: str | Callable[[Payload], str | int],
        timestamp: str | None = None,
        **options: Any,
    ) -> Stream:
        """A ``[[source]]``: ``topics`` merged, keyed by the payload field ``key`` (a dotted path
        reaches nested fields) or by what the function ``key`` computes from the payload (the
        file's ``key_by``), timed by ``timestamp``; ``options`` as the file names them
        (``partitioned_by_key``, ``dead_letter_topic``, ``idle_after``, ...)."""
        named = {"key_by": key} if callable(key) else {"key": key}
        entry: dict[str, Any] = {"name": name, "topics": list(topics), **named, **options}
        if timestamp is not None:
            entry["timestamp"] = timestamp
        if "idle_after" in entry:
            entry["idle_after"] = _duration(entry["idle_after"])
        self.sources.append(entry)
        return Stream(self, name)

    def api(self, **options: Any) -> None:
        """The ``[api]`` table (tokens, TLS, limits), as the file names its settings."""
        self.sections["api"] = options

    def kafka(self, **options: Any) -> None:
        """The ``[kafka]`` table (security), as the file names its settings."""
        self.sections["kafka"] = options

    def telemetry(self, **options: Any) -> None:
        """The ``[telemetry]`` table (traces), as the file names its settings."""
        self.sections["telemetry"] = options

    def raw(self) -> dict[str, Any]:
        """What a pipeline file would hold, functions in place of their names."""
        return {
            "app": {"id": self.id, **self.settings},
            "source": [dict(s) for s in self.sources],
            "table": [dict(t) for t in self.tables],
            **{name: dict(options) for name, options in self.sections.items()},
        }

    def plan(self, path: Path | str = "<python>") -> Pipeline:
        """The validated pipeline, as :func:`~streams.plan.pipeline.load_pipeline` would give
        for the same file; raises :class:`~streams.plan.errors.PipelineError`."""
        return parse_pipeline(self.raw(), path)


def load_python_pipeline(path: Path) -> Pipeline:
    """Import the Python file ``path`` (its directory first on the import path) and plan the
    :class:`App` it defines at module level: the one there is, or the one named ``app``."""
    module_name = f"continust_pipeline_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise PipelineError(path, "file", "is not a Python file that can be imported")
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's file: any error is theirs to read
        raise PipelineError(path, "file", f"failed to import: {type(exc).__name__}: {exc}") from exc
    apps = {name: value for name, value in vars(module).items() if isinstance(value, App)}
    if not apps:
        raise PipelineError(path, "file", "defines no App (write app = App(...) at module level)")
    if len(apps) > 1 and "app" not in apps:
        raise PipelineError(path, "file", f"defines several Apps ({', '.join(sorted(apps))}); name one `app`")
    return (apps["app"] if "app" in apps else next(iter(apps.values()))).plan(path)


def load_any_pipeline(path: str | Path) -> Pipeline:
    """A pipeline from a TOML file or, for a ``.py`` file, from the :class:`App` it defines."""
    path = Path(path)
    if path.suffix == ".py":
        if not path.exists():
            raise PipelineError(path, "file", "does not exist")
        return load_python_pipeline(path)
    return load_pipeline(path)
