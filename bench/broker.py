"""The bench's broker: the one already answering on the port, or the project's local Kafka
(:mod:`streams.kafka.local_kafka`) started for the run and stopped after it."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from streams.kafka.local_kafka import LocalKafka, answers_requests
from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.bench")


@dataclass
class BenchBroker:
    broker: LocalKafka
    started_here: bool

    @property
    def bootstrap(self) -> str:
        return self.broker.bootstrap

    @classmethod
    def ensure(cls, port: int | None) -> BenchBroker:
        """Use the broker answering on ``port`` (default: the CLI's, 9092), or start one there
        (fetching the jars with Maven the first time); waits until it answers."""
        broker = LocalKafka.from_env(port=port)
        if answers_requests(broker.bootstrap):
            log.info(logfmt("bench.broker.running", bootstrap=broker.bootstrap))
            return cls(broker, started_here=False)
        log.info(logfmt("bench.broker.starting", bootstrap=broker.bootstrap, log=broker.log_file))
        broker.start()
        return cls(broker, started_here=True)

    def release(self) -> None:
        """Stop the broker if this run started it (only the pid in its pid file)."""
        if self.started_here:
            self.broker.stop()
