"""One timed run of one contender: start its process, follow it to the end of its input, take
its measurements, stop it, and check its results against the reference.

The timed interval runs from the contender's first processed event (``started``) to the moment
it has processed all N events (``done``); events per second is N over that interval, CPU per
event is the process tree's CPU time over the same interval divided by N (startup, group join
and result reading are left out). For continust the interval ends when its consumer group has
committed everything of the input and repartition topics, so it includes up to one commit
interval after the last event.

Results that can only be read from the live process (a continust table over HTTP, the worker's
late and invalid event counters) are read once it has processed its input, before it is
stopped (:meth:`bench.contenders.Contender.inspect`); the others after it stopped.

A run whose results differ from the reference, or with a problem seen while reading them, is
``failed``; one that does not finish within its time limit is ``timeout``; one whose process
exits early is ``crashed``. Only ``ok`` runs are timed in the report.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from bench.child import pump_markers, start_child, stop_child
from bench.consumption import GroupWatch
from bench.contenders import Contender, Continust, RunPlan
from bench.process_stats import cpu_seconds, disk_bytes, peak_rss_bytes
from bench.verdict import Readback, Verdict, judge
from bench.windowing import Results
from bench.worker_api import metric_total
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")

PROGRESS_LOG_S = 5.0


@dataclass
class RunResult:
    contender: str
    repetition: int
    status: str = "ok"
    """``ok``, ``failed`` (wrong results), ``timeout`` or ``crashed``."""
    events: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    peak_rss_bytes: int = 0
    state_bytes: int = 0
    verdict: Verdict | None = None
    detail: str = ""
    log_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_event(self) -> float:
        return 1e6 * self.cpu_seconds / self.events if self.events else 0.0


def events_read(port: int) -> float:
    """The worker's ``continust_events_total`` (events its source stage has taken from a fetch);
    0 while it does not answer."""
    return metric_total(port, "continust_events_total") or 0.0


async def _watch_group(
    contender: Continust, plan: RunPlan, port: int, markers: asyncio.Queue[dict[str, Any]]
) -> None:
    """``started`` once the worker has taken its first events (its metrics, on ``port``);
    ``progress`` with the group's committed offsets of the input (``events``) and of the
    repartition topic if any (``keyed``, counting commit markers too); ``done`` once the group
    has committed every record of both."""
    repartition = contender.repartition_topic(plan)
    watch = GroupWatch(plan.bootstrap, plan.name)
    await watch.start()
    started = False
    try:
        while True:
            await asyncio.sleep(0.1 if not started else 0.25)
            try:
                if not started:
                    if await asyncio.to_thread(events_read, port) > 0:
                        started = True
                        markers.put_nowait({"bench": "started"})
                    continue
                if await watch.unread(plan.topic) == 0 and await watch.unread(repartition) == 0:
                    markers.put_nowait({"bench": "done", "events": plan.events})
                    return
                source = await watch.committed(plan.topic)
                keyed = await watch.committed(repartition)
            except Exception as exc:  # the coordinator moving, a topic not there yet: poll again
                log.debug(logfmt("bench.watch.retry", group=plan.name, error=repr(exc)))
                continue
            markers.put_nowait(
                {"bench": "progress", "events": sum(source.values()), "keyed": sum(keyed.values())}
            )
    finally:
        await watch.close()


async def run_contender(
    contender: Contender, plan: RunPlan, reference: Results, timeout_s: float, keep_state: bool = False
) -> RunResult:
    plan.workdir.mkdir(parents=True, exist_ok=True)
    log_path = plan.workdir / "contender.log"
    result = RunResult(contender.name, plan.repetition, log_file=str(log_path))
    launch = contender.launch(plan)
    log.info(logfmt("bench.run.start", contender=contender.name, rep=plan.repetition, log=log_path))
    markers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    with log_path.open("ab") as log_file:
        proc = await start_child(launch, log_file)
        tasks = [asyncio.create_task(pump_markers(proc, log_file, markers))]
        if isinstance(contender, Continust):
            tasks.append(
                asyncio.create_task(_watch_group(contender, plan, contender.web_port(launch), markers))
            )
        launched = time.monotonic()
        live = Readback()
        try:
            await _follow(contender, plan, proc, markers, result, launched, timeout_s)
            if result.status == "ok":
                live = await contender.inspect(plan, launch)
        finally:
            status = await stop_child(proc)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    result.extra["exit_status"] = status
    result.state_bytes = disk_bytes(plan.state_dir)
    if result.status == "ok":
        after = Readback() if live.results is not None else await contender.results(plan)
        got = live.results if live.results is not None else after.results
        result.verdict = judge(got or {}, reference, also=[*live.problems, *after.problems])
        if not result.verdict.ok:
            result.status, result.detail = "failed", result.verdict.summary()
    if not keep_state:
        shutil.rmtree(plan.state_dir, ignore_errors=True)
    log.info(
        logfmt(
            "bench.run.end",
            contender=contender.name,
            rep=plan.repetition,
            status=result.status,
            events_per_s=round(result.events_per_s),
            cpu_us_per_event=round(result.cpu_us_per_event, 1),
            peak_rss_mb=round(result.peak_rss_bytes / 2**20),
            state_mb=round(result.state_bytes / 2**20, 1),
            check=result.verdict.summary() if result.verdict else result.detail,
        )
    )
    return result


async def _follow(
    contender: Contender,
    plan: RunPlan,
    proc: asyncio.subprocess.Process,
    markers: asyncio.Queue[dict[str, Any]],
    result: RunResult,
    launched: float,
    timeout_s: float,
) -> None:
    """Wait for ``started``, ``done`` (and ``results`` when the job writes them); set
    ``result``'s measurements or its failure status. Times and CPU come from the markers when
    the job reports them (exact), else from the moment the harness sees the marker and
    ``/proc`` (10 ms ticks). Without a ``started`` marker the interval starts at launch."""
    deadline = launched + timeout_s
    started_at, cpu_at_start, last_log = launched, cpu_seconds(proc.pid), 0.0
    exited = asyncio.create_task(proc.wait())
    waiting_for = "started"
    try:
        while True:
            getter = asyncio.create_task(markers.get())
            remaining = deadline - time.monotonic()
            done, _ = await asyncio.wait(
                {getter, exited},
                timeout=max(0.0, min(remaining, PROGRESS_LOG_S)),
                return_when="FIRST_COMPLETED",
            )
            if not done and time.monotonic() < deadline:
                getter.cancel()
                log.info(
                    logfmt(
                        "bench.run.waiting",
                        contender=contender.name,
                        rep=plan.repetition,
                        waiting_for=waiting_for,
                        elapsed_s=round(time.monotonic() - launched),
                    )
                )
                continue
            if getter not in done:
                getter.cancel()
                if exited in done:
                    result.status, result.detail = "crashed", f"exited with status {proc.returncode}"
                else:
                    result.status, result.detail = "timeout", f"not done after {timeout_s:.0f}s"
                log.warning(
                    logfmt(
                        "bench.run.problem",
                        contender=contender.name,
                        status=result.status,
                        log=result.log_file,
                    )
                )
                return
            marker = getter.result()
            kind = marker.get("bench")
            now = float(marker.get("t", time.monotonic()))
            if kind == "started":
                waiting_for = "done"
                started_at, cpu_at_start = now, float(marker.get("cpu", cpu_seconds(proc.pid)))
                log.info(
                    logfmt(
                        "bench.run.started",
                        contender=contender.name,
                        rep=plan.repetition,
                        after_s=round(now - launched, 1),
                    )
                )
            elif kind == "progress" and now - last_log >= PROGRESS_LOG_S:
                last_log = now
                events = int(marker.get("events", 0))
                elapsed = now - started_at
                keyed = {"keyed": marker["keyed"]} if "keyed" in marker else {}
                log.info(
                    logfmt(
                        "bench.run.progress",
                        contender=contender.name,
                        rep=plan.repetition,
                        events=events,
                        **keyed,
                        of=plan.events,
                        elapsed_s=round(elapsed),
                        rate=round(events / elapsed) if elapsed > 0 else 0,
                    )
                )
            elif kind == "done":
                result.seconds = now - started_at
                result.cpu_seconds = float(marker.get("cpu", cpu_seconds(proc.pid))) - cpu_at_start
                result.peak_rss_bytes = peak_rss_bytes(proc.pid)
                result.events = int(marker.get("events", plan.events))
                log.info(
                    logfmt(
                        "bench.run.done",
                        contender=contender.name,
                        rep=plan.repetition,
                        seconds=round(result.seconds, 2),
                    )
                )
                if not contender.writes_results:
                    return
                waiting_for = "results"
            elif kind == "results":
                return
    finally:
        if not exited.done():
            exited.cancel()
