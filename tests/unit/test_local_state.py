from pathlib import Path

from agents.local_state import LocalState


def stores(tmp_path: Path) -> LocalState:
    state = LocalState(data_dir=tmp_path, table_dir=tmp_path / "v1" / "tables")
    return state


def write_store(state: LocalState) -> Path:
    db = state.table_dir / "clicks-0.db"
    db.mkdir(parents=True, exist_ok=True)
    (db / "000001.log").write_text("data")
    return db


def test_first_start_has_nothing_to_keep(tmp_path: Path) -> None:
    assert stores(tmp_path).open() == "none"


def test_stores_survive_a_clean_stop(tmp_path: Path) -> None:
    state = stores(tmp_path)
    state.open()
    db = write_store(state)
    state.close(committed_everything=True)
    assert state.open() == "kept" and db.exists()
    assert not state.marker.exists(), "the marker is consumed at start, so a later crash is seen"


def test_stores_are_deleted_after_a_crash(tmp_path: Path) -> None:
    state = stores(tmp_path)
    state.open()
    db = write_store(state)
    # no close(): the process was killed
    assert state.open() == "rebuilt" and not db.exists()


def test_a_stop_with_uncommitted_writes_counts_as_a_crash(tmp_path: Path) -> None:
    state = stores(tmp_path)
    state.open()
    db = write_store(state)
    state.close(committed_everything=False)
    assert state.open() == "rebuilt" and not db.exists()


def test_a_clean_stop_then_a_crash_rebuilds(tmp_path: Path) -> None:
    state = stores(tmp_path)
    state.open()
    db = write_store(state)
    state.close(committed_everything=True)
    state.open()
    assert state.open() == "rebuilt" and not db.exists()
