"""The machine a benchmark ran on, for the report: CPU model and cores, memory, OS, Python and
the versions of the broker and of every contender's library."""

from __future__ import annotations

import os
import platform
import re
from importlib import metadata
from pathlib import Path

from bench.contenders import PROJECT_ROOT

PACKAGES = ("faust-streaming", "aiokafka", "quixstreams", "confluent-kafka", "rocksdict", "orjson")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def kafka_version() -> str:
    """The broker version the project's local Kafka uses (``kafka/pom.xml``)."""
    try:
        pom = (PROJECT_ROOT / "kafka" / "pom.xml").read_text()
    except OSError:
        return "unknown"
    found = re.search(r"<kafka.version>([^<]+)</kafka.version>", pom)
    return found.group(1) if found else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> dict[str, str]:
    facts = {
        "CPU": _cpu_model(),
        "cores": str(os.cpu_count()),
        "memory": _memory(),
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "Kafka broker": f"Apache Kafka {kafka_version()} (single node, KRaft, local)",
    }
    facts.update({package: _version(package) for package in PACKAGES})
    return facts
