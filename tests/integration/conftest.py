"""Integration tests run against a real single-node Kafka broker started by the project itself
(port 19092 unless CONTINUST_TEST_KAFKA_PORT says otherwise), and real worker processes."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

from agents.cli.worker_command import worker_argv
from streams.kafka.local_kafka import LocalKafka, PortTaken

PORT = int(os.environ.get("CONTINUST_TEST_KAFKA_PORT", "19092"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


def _free_port_pair() -> int:
    """A port whose next port is free too (broker and controller listeners), both below the
    range the kernel hands out to outgoing connections, so that no client connection takes one
    of them while the broker is down (a test that stops and restarts it keeps its ports)."""
    low, high = 21_000, 28_999  # below 32768, the start of Linux's ephemeral range
    rng = random.Random()
    for _ in range(100):
        port = rng.randrange(low, high)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports")


@pytest.fixture(scope="session")
def kafka() -> Iterator[str]:
    """The suite's broker: ours on PORT (reused when already running), or, when some other
    process holds PORT, a fresh one on a free port that is removed afterwards."""
    broker = LocalKafka.from_env(port=PORT)
    temporary = broker.pid() is None and broker.port_open()
    if temporary:
        port = _free_port_pair()
        broker = LocalKafka.from_env(port=port)
    started_here = broker.pid() is None
    try:
        broker.start()
    except PortTaken:  # another checkout's suite started its broker on PORT at the same moment
        temporary = True
        broker = LocalKafka.from_env(port=_free_port_pair())
        broker.start()
    yield broker.bootstrap
    if started_here:
        broker.stop()
    if temporary:
        shutil.rmtree(broker.data_dir, ignore_errors=True)
        for path in (broker.config_file, broker.log_file):
            path.unlink(missing_ok=True)


@pytest.fixture
def run_id() -> str:
    return uuid.uuid4().hex[:8]


@dataclass
class Worker:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    data_dir: Path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str) -> tuple[int, Any]:
        try:
            with urllib.request.urlopen(self.url(path), timeout=10) as response:
                return response.status, orjson.loads(response.read())
        except urllib.error.HTTPError as err:
            return err.code, orjson.loads(err.read())

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def log_count(self, text: str) -> int:
        return self.log.read_text(errors="replace").count(text)

    def tasks(self) -> str:
        """The worker's asyncio tasks with what each awaits (it logs them on SIGUSR1), as of
        now: the lines it logged for this request (empty when it has exited or does not
        answer within 10 s)."""
        if self.proc.poll() is not None:
            return ""
        before = self.log.read_text(errors="replace")
        dumps = before.count("event=worker.task ")
        self.proc.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.log_count("event=worker.task ") > dumps, 10)
        lines = self.log.read_text(errors="replace")[len(before) :].splitlines()
        return "\n".join(line for line in lines if "event=worker.task " in line)

    @property
    def fault_marker(self) -> Path:
        """Where the worker writes what it was doing when its fault point fired
        (:mod:`agents.faults`)."""
        return self.data_dir / "fault-fired"

    def fault(self) -> dict[str, Any]:
        """The marker of the fault that fired (``{}`` when none did)."""
        if not self.fault_marker.exists():
            return {}
        return dict(orjson.loads(self.fault_marker.read_bytes()))


def workers_state(*workers: Worker, lines: int = 60) -> str:
    """For a failure's message: each worker's exit code (or its task stacks when running)
    and the tail of its log."""
    parts = []
    for worker in workers:
        tail, code = worker.log_tail(lines), worker.proc.poll()
        state = f"exited with {code}" if code is not None else "running; its tasks:\n" + worker.tasks()
        parts.append(f"--- worker on port {worker.port}, its log's end:\n{tail}\n--- {state}")
    return "\n".join(parts)


def spawn_worker(
    kafka: str,
    pipeline: Path,
    port: int,
    where: Path,
    fault: str | None = None,
    env: dict[str, str] | None = None,
) -> Worker:
    """Start a worker process whose log and data directory are in ``where``; ``fault``: its
    ``CONTINUST_FAULT`` (:mod:`agents.faults`), whose marker from an earlier fault is removed
    first; ``env``: more of its environment (``KAFKA_BOOTSTRAP_SERVERS`` for another broker
    than the suite's)."""
    log = where / f"worker-{port}.log"
    data_dir = where / f"data-{port}"
    extra = env or {}
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": kafka}
    for name in ("CONTINUST_FAULT", "CONTINUST_GROUP_INSTANCE_ID"):
        env.pop(name, None)
    env = {k: v for k, v in env.items() if not k.startswith("CONTINUST_API_")}
    env.update(extra)
    env.pop("CONTINUST_FAULT_MARKER", None)
    (data_dir / "fault-fired").unlink(missing_ok=True)
    if fault:
        env["CONTINUST_FAULT"] = fault
    proc = subprocess.Popen(
        worker_argv(pipeline, port, data_dir),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    return Worker(port=port, proc=proc, log=log, data_dir=data_dir)


def stop_workers(workers: list[Worker]) -> None:
    """Dump the running workers' task stacks into their logs, then stop them (SIGTERM; SIGKILL
    after 30 s)."""
    running = [w for w in workers if w.proc.poll() is None]
    dumped = {w.port: w.log_count("event=worker.task ") for w in running}
    for worker in running:
        worker.proc.send_signal(signal.SIGUSR1)  # its tasks' stacks, into its log
    wait_for(lambda: all(w.log_count("event=worker.task ") > dumped[w.port] for w in running), 10)
    for worker in workers:
        if worker.proc.poll() is None:
            worker.proc.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.proc.kill()
            worker.proc.wait()


@contextlib.contextmanager
def workers_on(bootstrap: str, tmp_path: Path) -> Iterator[Any]:
    """A function that starts a worker process on ``bootstrap`` (:func:`spawn_worker`); every
    worker it started is stopped when the block ends."""
    workers: list[Worker] = []

    def start(
        pipeline: Path, port: int, fault: str | None = None, env: dict[str, str] | None = None
    ) -> Worker:
        worker = spawn_worker(bootstrap, pipeline, port, tmp_path, fault, env)
        workers.append(worker)
        return worker

    try:
        yield start
    finally:
        stop_workers(workers)


@pytest.fixture
def start_worker(kafka: str, tmp_path: Path) -> Iterator[Any]:
    """Starts workers on the suite's broker, stopped when the test ends."""
    with workers_on(kafka, tmp_path) as start:
        yield start


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[LocalKafka]:
    """A fresh single-node broker on free ports, sharing the suite's jars: for a test marked
    ``beside``, which ``make test`` runs in a process beside the rest of the suite."""
    shared = LocalKafka.from_env()
    home = tmp_path / "kafka"
    home.mkdir()
    (home / "lib").symlink_to(shared.lib_dir.resolve())
    port = _free_port_pair()
    # the broker aborts a timed-out transaction within 1 s, not 10 s: a test sees what a
    # transaction timeout does as soon as it has passed
    broker = LocalKafka(
        home=home,
        port=port,
        controller_port=port + 1,
        extra_properties=(("transaction.abort.timed.out.transaction.cleanup.interval.ms", "1000"),),
    )
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def start_worker_on_own(own_broker: LocalKafka, tmp_path: Path) -> Iterator[Any]:
    """Starts workers on the test's own broker (never the suite's: the test needs no other), so
    that it can run in a process of its own beside the rest of the suite."""
    with workers_on(own_broker.bootstrap, tmp_path) as start:
        yield start


POLL_S = 0.2


def wait_for(predicate: Any, timeout: float) -> Any:
    """Poll ``predicate`` until it returns something true (returned) or ``timeout`` seconds
    pass (None). The poll interval only bounds how soon a change is seen."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_S)


def wait_until(predicate: Any, timeout: float, what: str, on_fail: Any = None) -> Any:
    """:func:`wait_for`, failing the test with what was awaited when it times out."""
    result = wait_for(predicate, timeout)
    if result:
        return result
    detail = on_fail() if on_fail else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}")


def wait_exit(worker: Worker, timeout: float, what: str) -> int:
    """Wait for ``worker``'s process to end; its exit code (negative: the signal)."""
    try:
        return worker.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        detail = worker.log_tail()
        raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{detail}") from None


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture(scope="session")
def api_worker(kafka: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One worker with a token file and a table holding windows, shared by the HTTP API's
    contract and auth tests (:mod:`tests.integration.api_worker`)."""
    from tests.integration.api_worker import start_api_worker

    where = tmp_path_factory.mktemp("api")
    started = start_api_worker(kafka, where, uuid.uuid4().hex[:8])
    yield started
    stop_workers([started.worker])
