"""Errors the engine reports to users."""

from __future__ import annotations

from pathlib import Path


class PipelineError(ValueError):
    """The pipeline file is wrong: names the file, the place in it, the problem and what is
    allowed."""

    def __init__(self, path: Path | str, where: str, problem: str) -> None:
        self.path = str(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.path}: {where}: {problem}")


class InvalidEvent(ValueError):
    """An input record that cannot be processed; ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")

    def headers(self) -> list[tuple[str, bytes]]:
        """Headers the record's dead letter carries besides the reason and the detail."""
        return []
