"""``continust demo``: start the local broker if needed, create the pipeline's input topics,
start a worker, publish realistic events with a progress line, and print the curl commands that
show the windows filling. Ctrl-C stops the worker and generator it started (and the broker, if
it started that too).

The console shows the progress line, the examples and continust's own events (info and above);
Faust's, aiokafka's and mode's logs only from warning up. The worker's full log goes to
:data:`WORKER_LOG`, named on the console at start (:mod:`agents.cli.demo_log`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, cast

from agents.cli.demo_commands import demo_commands
from agents.cli.demo_examples import EXAMPLES_AFTER_S, show_examples
from agents.cli.demo_log import follow_worker_log
from agents.cli.worker_command import worker_argv
from streams.cli.console_filter import ConsoleFilter
from streams.cli.event_generator import GeneratorOptions, generate, user_names
from streams.kafka.local_kafka import LocalKafka
from streams.kafka.topic_admin import ensure_topics
from streams.plan.pipeline import Pipeline, SourceSpec, load_pipeline
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.demo")
DATA_DIR = Path(".data/demo")
#: the worker's full log (every logger, every level the worker logs at)
WORKER_LOG = DATA_DIR / "worker.log"


def _wait_healthy(port: int, worker: subprocess.Popen[bytes], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited with status {worker.returncode}; see {WORKER_LOG}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                if b"repartition" in r.read():
                    return
        except OSError:
            pass
        time.sleep(1)
        log.info(logfmt("demo.waiting", what="worker", port=port))
    raise RuntimeError("the worker did not become ready in time")


async def _generate_and_show(
    bootstrap: str, source: SourceSpec, options: GeneratorOptions, pipeline: Pipeline, port: int, user: str
) -> None:
    """Publish events; once windows have filled for a while, show a top-N query and the first
    records of a live subscription, with the curl commands that ask for them."""
    generating = asyncio.create_task(generate(bootstrap, source, options))
    try:
        table = next((t for t in pipeline.tables if t.output), pipeline.tables[0])
        await asyncio.wait({generating}, timeout=EXAMPLES_AFTER_S)
        if not generating.done():
            await show_examples(port, table, user)
        await generating
    finally:
        generating.cancel()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(config: Path, web_port: int = 6066, rate: float = 200.0) -> int:
    # Ctrl-C and SIGTERM both stop the demo and what it started, even when SIGINT was ignored
    # by whatever launched it (as for background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    for handler in logging.getLogger().handlers:
        handler.addFilter(ConsoleFilter())
    pipeline = load_pipeline(config)
    broker = LocalKafka.from_env()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    started_broker = False
    if bootstrap == broker.bootstrap and broker.pid() is None:
        broker.start()
        started_broker = True
    source = pipeline.sources[0]
    asyncio.run(ensure_topics(bootstrap, {topic: 4 for s in pipeline.sources for topic in s.topics}))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    worker = subprocess.Popen(
        worker_argv(config, web_port, DATA_DIR),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker_log = follow_worker_log(cast(IO[bytes], worker.stdout), WORKER_LOG, sys.stderr)
    log.info(logfmt("demo.worker_log", path=WORKER_LOG, shown="continust events; warnings of the runtime"))
    try:
        _wait_healthy(web_port, worker)
        users = user_names(3)
        print(demo_commands(pipeline, web_port, users))
        asyncio.run(
            _generate_and_show(bootstrap, source, GeneratorOptions(rate=rate), pipeline, web_port, users[0])
        )
    except KeyboardInterrupt:
        print()
        log.info(logfmt("demo.stopping"))
    except RuntimeError as exc:
        log.error(logfmt("demo.failed", reason=str(exc)))
        return 1
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGTERM)
            try:
                worker.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        worker_log.join(timeout=5)
        if started_broker:
            broker.stop()
        log.info(logfmt("demo.stopped", worker=worker.returncode, broker_stopped=started_broker))
    return 0
