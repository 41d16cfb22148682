"""The command that runs one worker of a pipeline in a child process: this interpreter running
``continust worker`` through ``python -m agents.cli``, so it needs no console script on the PATH."""

from __future__ import annotations

import sys
from pathlib import Path


def worker_argv(config: Path | str, port: int, data_dir: Path | str) -> list[str]:
    """The argv of ``continust worker -c CONFIG --port PORT --data-dir DATA_DIR`` run by
    ``sys.executable``."""
    return [
        sys.executable,
        "-m",
        "agents.cli",
        "worker",
        "-c",
        str(config),
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
