"""A worker's local table state across restarts: kept, unless it is of another layout.

RocksDB holds committed state only, with the changelog offset it reflects
(:mod:`agents.table_store`): whatever way a worker stopped (SIGTERM, SIGKILL, a crash, a power
cut), its stores are the state of some committed transaction, and Faust's recovery reads the
changelogs only from the offsets they name. So a restarted worker keeps its stores.

The one exception is a store written in another layout (an older version of continust): the
data directory names its layout in :data:`LAYOUT_FILE`; a worker that finds another (or none,
next to existing stores) deletes its table stores, and Faust restores them from the changelogs.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from streams.telemetry.logfmt import logfmt

log = logging.getLogger("continust.state")

LAYOUT_FILE = "state-layout"
#: one record per window, a time index, committed state only with its changelog offset
LAYOUT = "window-records-v1"


@dataclass(frozen=True)
class LocalState:
    """``data_dir``: the worker's data directory; ``table_dir``: where Faust keeps the table
    stores inside it."""

    data_dir: Path
    table_dir: Path

    @property
    def layout_file(self) -> Path:
        return self.data_dir / LAYOUT_FILE

    def open(self) -> str:
        """Call before the worker starts. Returns what happened to the local stores: ``"none"``
        (there were none), ``"kept"`` (restored only from their changelog offsets on) or
        ``"rebuilt"`` (of another layout: deleted, to be restored from the changelogs)."""
        layout = self.layout_file.read_text().strip() if self.layout_file.exists() else None
        if not self.table_dir.exists() or not any(self.table_dir.iterdir()):
            outcome = "none"
        elif layout == LAYOUT:
            outcome = "kept"
        else:
            shutil.rmtree(self.table_dir)
            outcome = "rebuilt"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.layout_file.write_text(f"{LAYOUT}\n")
        log.info(logfmt("state.open", table_dir=self.table_dir, stores=outcome, layout=LAYOUT))
        return outcome

    def close(self, committed_everything: bool) -> None:
        """Call after the worker stopped: logs whether every write it made was committed (a
        clean stop); the stores are kept either way."""
        log.info(logfmt("state.close", clean=committed_everything))
