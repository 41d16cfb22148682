"""A worker's local table state across crashes: kept after a clean stop, rebuilt after any other.

Under ``exactly_once`` a table write reaches RocksDB at once, while the Kafka transaction that
carries its changelog record may still abort. A worker that dies (SIGKILL, a crash, a failed
commit, a power cut) can leave RocksDB holding effects Kafka never committed, and Faust's
recovery would keep them: it only replays the changelog on top of what is on disk.

So a worker that stops cleanly, with every write it made committed, leaves a marker file in its
data directory. A worker that starts without that marker deletes its table stores, and Faust
restores them from the changelogs, read with ``read_committed``: local state is then exactly
what Kafka committed. The marker is removed at start, so any later crash is seen. The cost is a
full changelog restore (compacted, so proportional to the live keys) after an unclean stop.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from streams.logfmt import logfmt

log = logging.getLogger("continust.state")

CLEAN_STOP_MARKER = "clean-stop"


@dataclass(frozen=True)
class LocalState:
    """``data_dir``: the worker's data directory; ``table_dir``: where Faust keeps the table
    stores inside it."""

    data_dir: Path
    table_dir: Path

    @property
    def marker(self) -> Path:
        return self.data_dir / CLEAN_STOP_MARKER

    def open(self) -> str:
        """Call before the worker starts. Returns what happened to the local stores: ``"none"``
        (there were none), ``"kept"`` (the last stop was clean) or ``"rebuilt"`` (deleted, to be
        restored from the changelogs)."""
        clean = self.marker.exists()
        self.marker.unlink(missing_ok=True)
        if not self.table_dir.exists() or not any(self.table_dir.iterdir()):
            outcome = "none"
        elif clean:
            outcome = "kept"
        else:
            shutil.rmtree(self.table_dir)
            outcome = "rebuilt"
        log.info(logfmt("state.open", table_dir=self.table_dir, stores=outcome))
        return outcome

    def close(self, committed_everything: bool) -> None:
        """Call after the worker stopped. Leaves the marker only when every write it made was
        committed; otherwise the next start rebuilds."""
        if committed_everything:
            self.marker.write_text(f"{time.time_ns() // 1_000_000}\n")
        log.info(logfmt("state.close", clean=committed_everything))
