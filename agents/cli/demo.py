"""``continust demo``: start the local broker if needed, create the pipelines' input topics,
start a worker per pipeline (a TOML file or a Python one), publish realistic events to each
pipeline's first source with a progress line, and print the curl commands that show the windows
filling. Ctrl-C stops the workers and generators it started (and the broker, if it started that
too). The first pipeline is the main job: the live examples (a top-N query and a subscription)
ask its worker, on ``--port``; the next ones listen on the ports after it.

The console shows the progress lines, the examples and continust's own events (info and above);
Faust's, aiokafka's and mode's logs only from warning up. Each worker's full log goes to
``worker.log`` in its data folder under :data:`DATA_DIR`, named on the console at start
(:mod:`agents.cli.demo_log`)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
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
from streams.plan.pipeline import Pipeline
from streams.plan.python_front import load_any_pipeline
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.demo")
DATA_DIR = Path(".data/demo")


@dataclass
class DemoWorker:
    """The worker the demo started for ``pipeline``: its HTTP port, data folder and process."""

    pipeline: Pipeline
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_thread: threading.Thread

    @property
    def log_path(self) -> Path:
        """The worker's full log (every logger, every level the worker logs at)."""
        return self.data_dir / "worker.log"


def start_worker(config: Path, pipeline: Pipeline, port: int, env: dict[str, str]) -> DemoWorker:
    """A worker for ``config``, its output copied to its log file and, filtered, the console."""
    data_dir = DATA_DIR / pipeline.app.id
    process = subprocess.Popen(
        worker_argv(config, port, data_dir),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    thread = follow_worker_log(cast(IO[bytes], process.stdout), data_dir / "worker.log", sys.stderr)
    worker = DemoWorker(pipeline, port, data_dir, process, thread)
    log.info(
        logfmt(
            "demo.worker_log",
            app=pipeline.app.id,
            port=port,
            path=worker.log_path,
            shown="continust events; warnings of the runtime",
        )
    )
    return worker


def stop_worker(worker: DemoWorker) -> None:
    """SIGTERM, and SIGKILL after 30 s."""
    process = worker.process
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    worker.log_thread.join(timeout=5)


def _wait_ready(worker: DemoWorker, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    port = worker.port
    while time.monotonic() < deadline:
        if worker.process.poll() is not None:
            raise RuntimeError(
                f"the worker of {worker.pipeline.app.id} exited with status "
                f"{worker.process.returncode}; see {worker.log_path}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:  # joined, assigned, its tables restored
                    return
        except OSError:  # not listening yet, or 503: not ready yet
            pass
        time.sleep(1)
        log.info(logfmt("demo.waiting", what="worker", app=worker.pipeline.app.id, port=port))
    raise RuntimeError("the worker did not become ready in time")


async def _generate_and_show(
    bootstrap: str, workers: list[DemoWorker], options: GeneratorOptions, user: str
) -> None:
    """Publish events to each pipeline's first source; once windows have filled for a while,
    show a top-N query and the first records of a live subscription on the main job's worker,
    with the curl commands that ask for them."""
    generating = [
        asyncio.create_task(generate(bootstrap, worker.pipeline.sources[0], options)) for worker in workers
    ]
    try:
        main = workers[0]
        table = next((t for t in main.pipeline.tables if t.output), main.pipeline.tables[0])
        done, _ = await asyncio.wait(
            generating, timeout=EXAMPLES_AFTER_S, return_when=asyncio.FIRST_COMPLETED
        )
        if not done:
            await show_examples(main.port, table, user)
        await asyncio.gather(*generating)
    finally:
        for task in generating:
            task.cancel()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(configs: list[Path], web_port: int = 6066, rate: float = 200.0) -> int:
    """Run the demo of ``configs`` (the first is the main job) until Ctrl-C or SIGTERM; returns
    the exit status."""
    # Ctrl-C and SIGTERM both stop the demo and what it started, even when SIGINT was ignored
    # by whatever launched it (as for background jobs of a non-interactive shell).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    for handler in logging.getLogger().handlers:
        handler.addFilter(ConsoleFilter())
    pipelines = [load_any_pipeline(config) for config in configs]
    ids = [p.app.id for p in pipelines]
    if len(set(ids)) != len(ids):
        log.error(logfmt("demo.failed", reason=f"two pipelines share an app id: {', '.join(ids)}"))
        return 2
    broker = LocalKafka.from_env()
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", broker.bootstrap)
    started_broker = False
    if bootstrap == broker.bootstrap and broker.pid() is None:
        broker.start()
        started_broker = True
    topics = {topic: 4 for p in pipelines for s in p.sources for topic in s.topics}
    asyncio.run(ensure_topics(bootstrap, topics))
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap}
    workers: list[DemoWorker] = []
    try:
        for i, (config, pipeline) in enumerate(zip(configs, pipelines, strict=True)):
            workers.append(start_worker(config, pipeline, web_port + i, env))
        for worker in workers:
            _wait_ready(worker)
        users = user_names(3)
        for worker in workers:
            print(demo_commands(worker.pipeline, worker.port, users))
        asyncio.run(_generate_and_show(bootstrap, workers, GeneratorOptions(rate=rate), users[0]))
    except KeyboardInterrupt:
        print()
        log.info(logfmt("demo.stopping"))
    except RuntimeError as exc:
        log.error(logfmt("demo.failed", reason=str(exc)))
        return 1
    finally:
        for worker in workers:
            stop_worker(worker)
        if started_broker:
            broker.stop()
        log.info(
            logfmt(
                "demo.stopped",
                workers=",".join(f"{w.pipeline.app.id}={w.process.returncode}" for w in workers),
                broker_stopped=started_broker,
            )
        )
    return 0
