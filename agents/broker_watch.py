"""Probe the Kafka cluster once a second and act on what the probes say
(:class:`streams.kafka.broker_reachability.BrokerReachability`).

While the cluster is unreachable the worker stays up (Faust and aiokafka retry on their own;
nothing commits, so nothing is lost), ``/health`` answers 503 saying so, and
``continust_broker_reachable`` is 0. After ``broker_timeout`` without a successful probe the
worker logs ``worker.broker_lost`` and exits with :data:`EXIT_BROKER_LOST`: its uncommitted
work is discarded as after a crash, and a restart continues from the last commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from mode import Service

from streams.kafka.broker_reachability import BrokerReachability
from streams.kafka.kafka_security import PLAINTEXT, KafkaSecurity
from streams.telemetry.logfmt import logfmt
from streams.telemetry.metrics import BROKER_REACHABLE, BROKER_UNREACHABLE_SECONDS

log = logging.getLogger("continust.broker")

#: the exit code of a worker that gave up on an unreachable cluster
EXIT_BROKER_LOST = 3
PROBE_INTERVAL_S = 1.0
PROBE_TIMEOUT_S = 3.0


async def probe_cluster(
    bootstrap_servers: str, timeout_s: float = PROBE_TIMEOUT_S, security: KafkaSecurity = PLAINTEXT
) -> str:
    """One metadata request to the cluster, connecting as ``security`` says: ``""`` when a
    broker answered, else why not."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=int(timeout_s * 1000),
        **security.client_options(),
    )
    try:
        await asyncio.wait_for(admin.start(), timeout_s)
        await asyncio.wait_for(admin.describe_cluster(), timeout_s)
        return ""
    except Exception as exc:  # any failure means: not reachable now
        return f"{type(exc).__name__}: {exc}"[:300]
    finally:
        with contextlib.suppress(Exception):  # closing a client that never connected
            await asyncio.wait_for(admin.close(), timeout_s)


@dataclass
class BrokerWatch:
    bootstrap_servers: str
    timeout_s: float
    security: KafkaSecurity = PLAINTEXT
    state: BrokerReachability = field(init=False)

    def __post_init__(self) -> None:
        self.state = BrokerReachability(self.timeout_s)
        BROKER_REACHABLE.set(1)
        BROKER_UNREACHABLE_SECONDS.set(0)

    async def check(self) -> None:
        """Probe once and act on the outcome."""
        error = await probe_cluster(self.bootstrap_servers, security=self.security)
        self.observe(error, time.monotonic())

    def observe(self, error: str, now: float) -> None:
        """Record one probe (``error``: ``""`` when it succeeded) and act on it."""
        if self.state.record(not error, now, error):
            if error:
                log.warning(logfmt("broker.unreachable", bootstrap=self.bootstrap_servers, error=error))
            else:
                log.info(logfmt("broker.reachable", bootstrap=self.bootstrap_servers))
        BROKER_REACHABLE.set(int(self.state.reachable))
        BROKER_UNREACHABLE_SECONDS.set(self.state.unreachable_for(now))
        if self.state.exhausted(now):
            log.error(
                logfmt(
                    "worker.broker_lost",
                    bootstrap=self.bootstrap_servers,
                    unreachable_s=round(self.state.unreachable_for(now), 1),
                    broker_timeout_s=self.timeout_s,
                    error=self.state.last_error,
                    exit_code=EXIT_BROKER_LOST,
                    message="no broker answered for broker_timeout; exiting so that a restart "
                    "continues from the last commit",
                )
            )
            logging.shutdown()
            os._exit(EXIT_BROKER_LOST)

    def health(self, now: float) -> dict[str, Any]:
        """The broker part of ``/health``."""
        if self.state.reachable:
            return {"broker": "reachable"}
        return {
            "broker": "unreachable",
            "unreachable_s": round(self.state.unreachable_for(now), 1),
            "exits_in_s": round(max(0.0, self.timeout_s - self.state.unreachable_for(now)), 1),
            "error": self.state.last_error,
        }


class BrokerWatchService(Service):
    """Runs :meth:`BrokerWatch.check` every :data:`PROBE_INTERVAL_S` from the moment the worker
    starts, beside the Faust app (whose own timers start only once its tables have recovered,
    and an outage during recovery must be seen too)."""

    def __init__(self, watch: BrokerWatch, **kwargs: Any) -> None:
        self.watch = watch
        super().__init__(**kwargs)

    @Service.task
    async def probe_loop(self) -> None:
        while not self.should_stop:
            await self.watch.check()
            await self.sleep(PROBE_INTERVAL_S)
