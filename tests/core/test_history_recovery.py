"""Nothing lost when the database file is damaged, made by a newer anechat, or cannot
be written: anechat still starts, says what happened in one line (``store.warning``),
and never deletes or overwrites a file."""

from __future__ import annotations

import os
import sqlite3

import pytest

from anechat.history import HistoryStore, SchemaTooNew
from anechat.history.recovery import move_aside
from anechat.history.schema import SCHEMA_VERSION, migrate

GARBAGE = b"this is not an SQLite database, just some bytes a crash left behind\n" * 100


def moved_files(folder, name="history"):
    return sorted(p for p in folder.iterdir() if p.name.startswith(f"{name}.corrupt-"))


def test_a_file_that_is_not_a_database_is_moved_aside_and_a_new_one_started(tmp_path):
    db = tmp_path / "history.sqlite3"
    db.write_bytes(GARBAGE)
    with HistoryStore(db) as store:
        assert store.persistent
        [moved] = moved_files(tmp_path)
        assert moved.read_bytes() == GARBAGE  # kept byte for byte
        assert "damaged" in store.warning and str(moved) in store.warning and "new one started" in store.warning
        sid = store.new_session("m", "mlx")
        store.add_user_message(sid, "works again")
    with HistoryStore(db) as again:  # the new database is a good one
        assert again.warning is None
        assert again.get_session(sid).messages[0].content == "works again"


def test_a_database_with_damaged_pages_is_moved_aside_with_its_wal(tmp_path):
    db = tmp_path / "history.sqlite3"
    with HistoryStore(db) as store:
        sid = store.new_session()
        for i in range(200):
            store.add_user_message(sid, f"message {i} " + "padding " * 50)
    size = db.stat().st_size
    assert size > 8 * 4096
    with open(db, "r+b") as f:  # scribble over a few pages in the middle
        f.seek(size // 2)
        f.write(b"\xde\xad\xbe\xef" * 4096)
    damaged = db.read_bytes()
    (tmp_path / "history.sqlite3-wal").write_bytes(b"a leftover write-ahead log")

    with HistoryStore(db) as store:
        assert store.warning and "damaged" in store.warning
        assert store.list_sessions() == []
    main = next(p for p in moved_files(tmp_path) if p.suffix == ".sqlite3")
    assert main.read_bytes() == damaged
    wal = main.with_name(main.name + "-wal")  # moved with it, under the matching name
    assert wal.read_bytes() == b"a leftover write-ahead log"


def test_moving_aside_never_overwrites_an_earlier_moved_file(tmp_path):
    db = tmp_path / "history.sqlite3"
    db.write_bytes(b"first broken file")
    first = move_aside(db)
    db.write_bytes(b"second broken file")
    second = move_aside(db)  # same second, most likely: gets a new name, not the old one
    assert first != second and not db.exists()
    assert first.read_bytes() == b"first broken file" and second.read_bytes() == b"second broken file"


def test_a_database_from_a_newer_anechat_is_left_untouched(tmp_path):
    db = tmp_path / "history.sqlite3"
    conn = sqlite3.connect(db)
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    before = db.read_bytes()
    with HistoryStore(db) as store:
        assert not store.persistent
        assert f"schema version {SCHEMA_VERSION + 5}" in store.warning and "upgrade anechat" in store.warning
        assert "in memory only" in store.warning
        store.add_user_message(store.new_session(), "still usable")
    assert db.read_bytes() == before and moved_files(tmp_path) == []


def test_an_unwritable_data_folder_falls_back_to_memory_and_says_so(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the data folder should be")
    with HistoryStore(blocker / "data" / "history.sqlite3") as store:
        assert not store.persistent and store.path is None
        assert f"cannot create the data folder {blocker / 'data'}" in store.warning
        assert "in memory only and will be lost when anechat exits" in store.warning
        sid = store.new_session("m", "mlx")  # the app still works, for this run
        store.add_user_message(sid, "kept in memory")
        assert store.get_session(sid).messages[0].content == "kept in memory"
    assert blocker.read_text() == "a file where the data folder should be"


def test_a_database_path_that_cannot_be_opened_falls_back_to_memory(tmp_path):
    (tmp_path / "history.sqlite3").mkdir()  # a folder where the file should be
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        assert not store.persistent
        assert "cannot write the history database" in store.warning
    assert (tmp_path / "history.sqlite3").is_dir() and moved_files(tmp_path) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_a_read_only_data_folder_falls_back_to_memory(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with HistoryStore(folder / "history.sqlite3") as store:
            assert not store.persistent and "kept in memory" in store.warning
    finally:
        folder.chmod(0o700)


# -- schema versions --------------------------------------------------------------


def _conn(path):
    return sqlite3.connect(path, isolation_level=None)


V1 = "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);"


def add_column(conn):
    conn.execute("ALTER TABLE notes ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0")


def test_migrations_bring_an_old_database_up_to_date_and_keep_its_rows(tmp_path):
    conn = _conn(tmp_path / "x.sqlite3")
    assert migrate(conn, [V1]) == 0
    conn.execute("INSERT INTO notes (body) VALUES ('written by version 1')")
    assert migrate(conn, [V1, add_column]) == 1  # it found version 1, ran one step
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
    assert conn.execute("SELECT body, pinned FROM notes").fetchall() == [("written by version 1", 0)]
    assert migrate(conn, [V1, add_column]) == 2  # nothing left to do


def test_a_failing_migration_leaves_the_database_as_it_was(tmp_path):
    conn = _conn(tmp_path / "x.sqlite3")
    migrate(conn, [V1])

    def broken(c):
        c.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("step 2 failed")

    with pytest.raises(RuntimeError):
        migrate(conn, [V1, broken])
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'half_done'").fetchall() == []


def test_a_newer_schema_is_refused_not_downgraded(tmp_path):
    conn = _conn(tmp_path / "x.sqlite3")
    migrate(conn, [V1, add_column])
    with pytest.raises(SchemaTooNew, match="schema version 2; this anechat knows up to 1"):
        migrate(conn, [V1])
