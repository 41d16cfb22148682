"""How a pipeline's stages are built and wired, once for the worker and the stage test driver.

:func:`build_stages` makes, from a validated :class:`streams.plan.pipeline.Pipeline`, one
:class:`agents.merge.SourceStage` per source with its :class:`agents.keyed_stream.KeyedStream`
(installed: a repartitioned source's stage reads the source topics), one
:class:`agents.windowed.TableStage` per table (installed: its hooks in the commit sequence, its
revocation handler and idle timer), and one keyed agent per source with tables, which hands each
batch of the keyed stream to all of them. The worker (:func:`agents.application.build_app`)
calls it on a Faust app and its sink; the driver (:mod:`agents.stage_driver`) on its own app
stand-in, sink and stores. Neither wires a stage any other way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agents.app_runtime import AppRuntime
from agents.clock import WALL_CLOCK, Clock
from agents.keyed_stream import KeyedStream, keyed_stream
from agents.merge import SourceStage, repartition_topic
from agents.sink import RecordSink
from agents.table_store import TablePartitions
from agents.windowed import TableStage, install_keyed_agent
from streams.plan.dead_letters import dead_letter_topic
from streams.plan.pipeline import Pipeline


@dataclass
class Stages:
    """The stages of a pipeline, by source and table name."""

    sources: dict[str, SourceStage] = field(default_factory=dict)
    #: what each source's tables read
    streams: dict[str, KeyedStream] = field(default_factory=dict)
    tables: dict[str, TableStage] = field(default_factory=dict)


@dataclass(frozen=True)
class StageOptions:
    """What the stages take beyond the pipeline. ``source_partitions``: each source's keyed
    stream partition count; ``topic_partitions``: each source topic's. ``committed`` and
    ``changelog``: a table's committed store and changelog topic name (``None``: a Faust table
    of the app, on RocksDB)."""

    app_id: str
    max_future_ms: int
    source_partitions: Mapping[str, int]
    topic_partitions: Mapping[str, int]
    clock: Clock = WALL_CLOCK
    store_options: dict[str, int] | None = None
    committed: Callable[[str], TablePartitions | None] = lambda table: None
    changelog: Callable[[str], str | None] = lambda table: None


def build_stages(
    app: Any, runtime: AppRuntime, sink: RecordSink, pipeline: Pipeline, options: StageOptions
) -> Stages:
    """Build, install and wire the stages of ``pipeline`` on ``app`` (see the module docstring)."""
    stages = Stages()
    for spec in pipeline.sources:
        source = SourceStage(
            app=app,
            runtime=runtime,
            spec=spec,
            sink=sink,
            repartition=repartition_topic(options.app_id, spec.name),
            dead_letters=dead_letter_topic(options.app_id, spec.dead_letter_topic),
            max_future_ms=options.max_future_ms,
            partitions=options.source_partitions[spec.name],
            topic_partitions={topic: options.topic_partitions[topic] for topic in spec.topics},
            clock=options.clock,
        )
        stages.sources[spec.name] = source
        stages.streams[spec.name] = keyed_stream(source)
        stages.streams[spec.name].install()
    for table in pipeline.tables:
        stage = TableStage(
            app=app,
            runtime=runtime,
            spec=table,
            source=stages.sources[table.source],
            stream=stages.streams[table.source],
            sink=sink,
            partitions=options.source_partitions[table.source],
            clock=options.clock,
            store_options=options.store_options,
            committed=options.committed(table.name),
            changelog=options.changelog(table.name),
        )
        stage.install()
        stages.tables[table.name] = stage
    for name, stream in stages.streams.items():
        tables = [t for t in stages.tables.values() if t.spec.source == name]
        if tables:
            install_keyed_agent(runtime, stream, sink, tables, options.source_partitions[name])
    return stages
