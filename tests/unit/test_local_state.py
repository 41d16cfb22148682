from pathlib import Path

from agents.local_state import LAYOUT, LocalState


def stores(tmp_path: Path) -> LocalState:
    return LocalState(data_dir=tmp_path, table_dir=tmp_path / "v1" / "tables")


def write_store(state: LocalState) -> Path:
    db = state.table_dir / "clicks-0.db"
    db.mkdir(parents=True, exist_ok=True)
    (db / "000001.log").write_text("data")
    return db


def test_first_start_has_nothing_to_keep(tmp_path: Path) -> None:
    state = stores(tmp_path)
    assert state.open() == "none"
    assert state.layout_file.read_text().strip() == LAYOUT


def test_stores_survive_any_stop(tmp_path: Path) -> None:
    """A store holds committed state only, so a restart keeps it however the worker stopped
    (there is no stop hook to run: a SIGKILL runs none)."""
    state = stores(tmp_path)
    state.open()
    db = write_store(state)
    assert state.open() == "kept" and db.exists()
    assert state.open() == "kept" and db.exists()


def test_stores_of_another_layout_are_rebuilt(tmp_path: Path) -> None:
    state = stores(tmp_path)
    db = write_store(state)  # no layout file: written by a version before window records
    assert state.open() == "rebuilt" and not db.exists()
    db = write_store(state)
    state.layout_file.write_text("key-json-v0\n")
    assert state.open() == "rebuilt" and not db.exists()
    assert state.layout_file.read_text().strip() == LAYOUT
