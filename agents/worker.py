"""Run one worker of a pipeline until SIGTERM or Ctrl-C."""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import logging.config
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn, cast

import faust
from faust.types.enums import ProcessingGuarantee

from agents.application import prepare
from agents.broker_watch import BrokerWatchService
from agents.faults import arm_from_env
from agents.faust_compat import (
    PromptWorker,
    acked_offsets,
    active_partitions,
    committed_offsets,
    consumer_thread,
    kafka_consumer,
    partition_state,
    paused_partitions,
    read_offsets,
    unacked_messages,
)
from agents.gc_pauses import watch_gc_pauses
from agents.local_state import LocalState
from agents.shutdown_bound import ShutdownBound
from agents.transport import TransactionManager
from streams.plan.pipeline import Pipeline
from streams.settings import Settings
from streams.telemetry.logfmt import EVERY_LINE, logfmt
from streams.telemetry.tracing import open_tracer, tracing_settings

log = logging.getLogger("continust.worker")
AGENTS_DIR = Path(__file__).resolve().parent


def logging_config(level: str, settings: Settings | None = None) -> dict[str, Any]:
    """The worker's logging (``logging.config.dictConfig``): every logger to stderr in the
    settings' log format, each line naming the app and the worker, repeats rate-limited."""
    formatter: dict[str, Any] = {"()": "streams.telemetry.logfmt.formatter"}
    if settings is not None:
        formatter.update(log_format=settings.log_format, app=settings.app_id, worker=settings.worker_name)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"logfmt": formatter},
        "filters": {"repeats": {"()": "streams.telemetry.logfmt.RepeatedMessageFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "logfmt",
                "filters": ["repeats"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": level.upper(), "handlers": ["stderr"]},
    }


def _await_chain(start: Any) -> str:
    frames: list[str] = []
    coro: Any = start.get_coro() if isinstance(start, asyncio.Task) else start
    while coro is not None and len(frames) < 20:
        if isinstance(coro, asyncio.Task):
            coro = coro.get_coro()
        elif isinstance(coro, asyncio.Future):
            frames.append(type(coro).__name__)
            break
        frame = (
            getattr(coro, "cr_frame", None)
            or getattr(coro, "ag_frame", None)
            or getattr(coro, "gi_frame", None)
        )
        if frame is not None:
            frames.append(
                f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}:{frame.f_code.co_name}"
            )
        coro = (
            getattr(coro, "cr_await", None)
            or getattr(coro, "ag_await", None)
            or getattr(coro, "gi_yieldfrom", None)
        )
    return " -> ".join(frames) or "-"


def dump_tasks() -> None:
    """Log where every asyncio task is waiting (on SIGUSR1): the await chain from the task's
    coroutine down to the innermost awaited call, for a worker that seems stuck."""
    for task in asyncio.all_tasks():
        log.warning(
            logfmt("worker.task", name=task.get_name(), awaits=_await_chain(task)), extra={EVERY_LINE: True}
        )
    # Agents run behind Faust's actor wrappers, which hide their await chain from the task.
    for obj in gc.get_objects():
        if inspect.iscoroutine(obj) and obj.cr_code.co_filename.startswith(str(AGENTS_DIR)):
            log.warning(
                logfmt("worker.agent", name=obj.cr_code.co_name, awaits=_await_chain(obj)),
                extra={EVERY_LINE: True},
            )


def dump_consumer(app: faust.App) -> None:
    """Log every assigned partition's fetch state (position, paused, status) as the consumer and
    Faust see it (on SIGUSR1)."""
    consumer: Any = app.consumer
    client = kafka_consumer(consumer_thread(consumer))
    active = active_partitions(consumer) or set()
    paused = paused_partitions(consumer)
    in_flight: dict[Any, list[int]] = {}
    for message in list(unacked_messages(consumer)):
        in_flight.setdefault(message.tp, []).append(message.offset)
    read, committed, acked = read_offsets(consumer), committed_offsets(consumer), acked_offsets(consumer)
    for tp in sorted(client.assignment()):
        state = partition_state(client, tp)
        if state is None:
            continue
        log.warning(
            logfmt(
                "worker.partition",
                tp=f"{tp.topic}:{tp.partition}",
                position=state.position,
                status=state.status,
                kafka_paused=state.paused,
                faust_active=tp in active,
                faust_paused=tp in paused,
                read_offset=read.get(tp),
                committed=committed.get(tp),
                acked=",".join(map(str, list(acked.get(tp, []))[-5:])),
                in_flight=",".join(map(str, sorted(in_flight.get(tp, []))[:5])),
            ),
            extra={EVERY_LINE: True},
        )


def committed_everything(app: Any, code: int) -> bool:
    """Whether the worker stopped cleanly with every write it made committed."""
    if code != 0:
        return False
    if app.conf.processing_guarantee != ProcessingGuarantee.EXACTLY_ONCE:
        return True
    try:
        transactions = app.consumer.transactions
    except Exception:  # never started
        return True
    return not cast(TransactionManager, transactions).uncommitted_writes


class BoundedWorker(PromptWorker):
    """Faust's worker (signal handlers included: SIGTERM and SIGINT stop it cleanly, also as a
    container's PID 1; without mode's fixed wait at the end, :class:`PromptWorker`) whose
    stop, however it begins, must end within the shutdown bound."""

    def __init__(self, *services: Any, shutdown_bound: ShutdownBound, **kwargs: Any) -> None:
        super().__init__(*services, **kwargs)
        self.shutdown_bound = shutdown_bound

    async def stop(self) -> None:
        self.shutdown_bound.arm()
        await super().stop()


def run_worker(pipeline: Pipeline, settings: Settings, loglevel: str = "info") -> NoReturn:
    logging.config.dictConfig(logging_config(loglevel, settings))
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        arm_from_env(os.environ, settings.data_dir)
    except ValueError as exc:
        print(f"continust: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    tracer = open_tracer(
        tracing_settings(pipeline.telemetry, os.environ, settings.app_id, pipeline.path), pipeline.path
    )
    watch_gc_pauses()
    built = prepare(pipeline, settings)
    local_state = LocalState(data_dir=settings.data_dir, table_dir=Path(built.app.conf.tabledir))
    local_state.open()
    log.info(
        logfmt(
            "worker.start",
            app=settings.app_id,
            pipeline=pipeline.path,
            web_port=settings.web_port,
            guarantee=settings.processing_guarantee,
            tables=",".join(built.tables),
            **settings.kafka.describe(),
        )
    )

    @built.app.task
    async def install_task_dump() -> None:
        def dump() -> None:
            try:
                dump_tasks()
                dump_consumer(built.app)
            except Exception as exc:  # a diagnostic must never stop the worker
                log.warning(logfmt("worker.dump_failed", error=repr(exc)))

        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)

    worker = BoundedWorker(
        built.app,
        BrokerWatchService(built.broker),
        shutdown_bound=ShutdownBound(settings.shutdown_timeout_ms / 1000),
        loglevel=loglevel,
        logging_config=logging_config(loglevel, settings),
        quiet=True,
    )
    code = 0
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    # By now Faust has committed, left the group and closed the stores. Its consumer thread
    # (a non-daemon thread running its own event loop) sometimes never stops, which would keep
    # the process alive forever, so the process ends here.
    local_state.close(committed_everything(built.app, code))
    tracer.shutdown()
    log.info(logfmt("worker.exit", code=code))
    logging.shutdown()
    os._exit(code)
