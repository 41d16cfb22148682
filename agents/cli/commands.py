"""The ``continust`` command line.

    continust worker -c PIPELINES.toml [--port 6066] [--data-dir DIR]
    continust kafka start|stop|status [--port 9092]
    continust generate -c PIPELINES.toml [--rate 200] [--duration 0] [--users 50]
    continust demo [-c examples/pipelines.toml [-c examples/big_purchases.py ...]]
    continust produce --source NAME [--url URL] [--token TOKEN] [--batch 500] [FILE | -]
    continust tail TABLE [--key K] [--url URL ...] [--token T] [--from-id ID] [--count N]
    continust query [TABLE [KEY]] [--from --to --prefix --limit --all --top BY --n N --after TOKEN]
                    [--url URL] [--token TOKEN]
    continust health [--url URL] [--ready] [--timeout 5]

It belongs to the top layer, ``agents``, because ``worker`` and ``demo`` start the runtime. Each
command imports what it needs when it runs, so ``kafka``, ``generate``, ``produce``, ``tail``,
``query``, ``health`` and ``--help`` start without loading Faust.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace
from pathlib import Path

from streams.kafka.credentials_check import EXIT_CREDENTIALS_REFUSED, CredentialsRefused
from streams.kafka.kafka_security import KafkaSecurityError
from streams.kafka.local_kafka import BrokerError, LocalKafka
from streams.plan.errors import PipelineError
from streams.telemetry.logfmt import LOG_FORMATS, configure_logging


def _worker(args: argparse.Namespace) -> int:
    from agents.worker import run_worker
    from streams.plan.python_front import load_any_pipeline
    from streams.settings import Settings

    pipeline = load_any_pipeline(args.config)
    settings = Settings.from_env().with_pipeline(pipeline)
    if args.port is not None:
        settings = replace(settings, web_port=args.port)
    if args.data_dir is not None:
        settings = replace(settings, data_dir=Path(args.data_dir))
    return run_worker(pipeline, settings, loglevel=args.loglevel)


def _kafka(args: argparse.Namespace) -> int:
    broker = LocalKafka.from_env(port=args.port)
    if args.action == "start":
        broker.start()
    elif args.action == "stop":
        broker.stop()
    else:
        print(broker.status())
        return 0 if broker.pid() is not None else 3
    return 0


def _generate(args: argparse.Namespace) -> int:
    import asyncio

    from streams.cli.event_generator import GeneratorOptions, generate
    from streams.plan.python_front import load_any_pipeline
    from streams.settings import Settings

    pipeline = load_any_pipeline(args.config)
    options = GeneratorOptions(rate=args.rate, duration_s=args.duration, users=args.users)
    settings = Settings.from_env()
    asyncio.run(generate(settings.bootstrap_servers, pipeline.sources[0], options, settings.kafka.check()))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from agents.cli.demo import run_demo

    configs = [Path(c) for c in args.config or ["examples/pipelines.toml"]]
    return run_demo(configs, web_port=args.port, rate=args.rate)


def _produce(args: argparse.Namespace) -> int:
    from streams.cli.produce_command import ProduceOptions, produce_file

    return produce_file(args.file, ProduceOptions(args.source, args.url, args.token, args.batch))


def _tail(args: argparse.Namespace) -> int:
    from streams.cli.tail_command import Tail, TailOptions, token_from_env

    options = TailOptions(
        table=args.table,
        urls=tuple(args.url or ["http://127.0.0.1:6066"]),
        key=args.key,
        token=token_from_env(args.token),
        from_id=args.from_id,
        count=args.count,
        heartbeat_s=args.heartbeat,
    )
    return Tail(options, sys.stdout.buffer).run()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _query(args: argparse.Namespace) -> int:
    from streams.cli.query_command import main as query_main

    return query_main(args)


def _health(args: argparse.Namespace) -> int:
    from streams.cli.health_command import main as health_main

    return health_main(args, sys.stdout)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="continust", description="Kafka-native stream processing.")
    p.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    sub = p.add_subparsers(dest="command", required=True)

    w = sub.add_parser("worker", help="run one worker of a pipeline")
    w.add_argument("-c", "--config", required=True, help="pipeline file: TOML, or Python defining an App")
    w.add_argument("--port", type=int, default=None, help="HTTP port (default 6066)")
    w.add_argument("--data-dir", default=None, help="RocksDB state directory (default .data)")
    w.set_defaults(run=_worker)

    k = sub.add_parser("kafka", help="the local single-node Kafka broker")
    k.add_argument("action", choices=["start", "stop", "status"])
    k.add_argument("--port", type=int, default=None, help="broker port (default 9092)")
    k.set_defaults(run=_kafka)

    g = sub.add_parser("generate", help="publish realistic events to a pipeline's first source")
    g.add_argument("-c", "--config", required=True, help="pipeline file: TOML, or Python defining an App")
    g.add_argument("--rate", type=float, default=200.0, help="events per second")
    g.add_argument("--duration", type=float, default=0.0, help="seconds; 0 runs until Ctrl-C")
    g.add_argument("--users", type=int, default=50)
    g.set_defaults(run=_generate)

    d = sub.add_parser("demo", help="broker, topics, a worker and a generator, all at once")
    d.add_argument(
        "-c",
        "--config",
        action="append",
        help="a pipeline (TOML or Python); again for another, each with its own worker "
        "(default: examples/pipelines.toml)",
    )
    d.add_argument(
        "--port", type=int, default=6066, help="the first worker's HTTP port; the next ones follow it"
    )
    d.add_argument("--rate", type=float, default=200.0, help="events per second")
    d.set_defaults(run=_demo)

    pr = sub.add_parser("produce", help="send NDJSON events to a worker's ingest route, in batches")
    pr.add_argument("--source", required=True, help="the source the events belong to")
    pr.add_argument("--url", default="http://127.0.0.1:6066", help="a worker's base URL")
    pr.add_argument(
        "--token", default=None, help="bearer token with scope ingest (default: $CONTINUST_API_TOKEN)"
    )
    pr.add_argument("--batch", type=int, default=500, help="events per request")
    pr.add_argument("file", nargs="?", default="-", help="NDJSON file, one event per line (- : stdin)")
    pr.set_defaults(run=_produce)

    t = sub.add_parser("tail", help="follow a table live: one NDJSON line per event on stdout")
    t.add_argument("table")
    t.add_argument("--key", default=None, help="follow only this key (default: the whole table)")
    t.add_argument(
        "--url",
        action="append",
        help="a worker's base URL (default http://127.0.0.1:6066); repeat it to reconnect to "
        "the next one in turn",
    )
    t.add_argument("--token", default=None, help="bearer token (default: CONTINUST_API_TOKEN)")
    t.add_argument("--from-id", default=None, help="resume right after this event id (no snapshot)")
    t.add_argument("--count", type=_positive, default=None, help="stop after this many events")
    t.add_argument("--heartbeat", type=int, default=15, help="seconds between the worker's heartbeats")
    t.set_defaults(run=_tail)

    from streams.cli.query_command import add_arguments as query_arguments

    q = sub.add_parser("query", help="ask a worker about a table: catalog, key, scan or top keys")
    query_arguments(q)
    q.set_defaults(run=_query)

    from streams.cli.health_command import add_arguments as health_arguments

    h = sub.add_parser("health", help="exit 0 when a worker answers /health (or /ready) with 200")
    health_arguments(h)
    h.set_defaults(run=_health)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    log_format = os.environ.get("CONTINUST_LOG_FORMAT") or "logfmt"
    if log_format not in LOG_FORMATS:
        print(
            f"continust: CONTINUST_LOG_FORMAT={log_format!r}; allowed: {', '.join(LOG_FORMATS)}",
            file=sys.stderr,
        )
        return 2
    configure_logging(args.loglevel, log_format)
    try:
        return int(args.run(args))
    except (PipelineError, BrokerError, KafkaSecurityError) as exc:
        print(f"continust: {exc}", file=sys.stderr)
        return 2
    except CredentialsRefused as exc:
        print(f"continust: {exc}", file=sys.stderr)
        return EXIT_CREDENTIALS_REFUSED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
