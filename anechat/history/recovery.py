"""Opening the history database so that anechat always starts.

- a damaged file (not a database, malformed pages) is moved aside under a new
  name with a timestamp (with its ``-wal``/``-shm`` companions), never deleted or
  overwritten, and a new database is started in its place;
- a database that opens but cannot be written now (disk full, read-only file or
  mount) stays open for reading with ``write_error`` set: a probe write at open
  finds that out, and the chat keeps what it cannot save in memory until writing
  works again (anechat.history.recorder);
- a database that cannot be opened now (full disk, I/O error...) falls back to an
  in-memory database and names the file to try again (``retry_path``, see
  HistoryStore.reopen); a data folder that cannot be made, or a database made by a
  newer anechat, is left alone for good, in memory too.

Either way :class:`Opened.warning` carries one line for the person at the keyboard.
"""

from __future__ import annotations

import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from anechat.history.errors import HistoryError, SchemaTooNew
from anechat.history.schema import SCHEMA_VERSION, migrate, version_of

SQLITE_CORRUPT = 11
SQLITE_NOTADB = 26
_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass
class Opened:
    conn: sqlite3.Connection
    path: Path | None  # None: in memory, nothing is saved
    warning: str | None = None
    write_error: str | None = None  # why the probe write at open failed (disk full, read-only...)
    retry_path: Path | None = None  # in memory for now: the file to try again (full disk, I/O error...)


class _Damaged(Exception):
    pass


def open_database(path: Path, *, busy_timeout_s: float = 10.0) -> Opened:
    path = Path(path)
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return _in_memory(f"cannot create the data folder {folder} ({_reason(e)})")
    try:
        conn = _open_file(path, busy_timeout_s)
    except _Damaged as e:
        reason = str(e)
    except SchemaTooNew as e:
        return _in_memory(f"{path}: {e}")
    except (sqlite3.Error, OSError) as e:
        return _in_memory(f"cannot write the history database {path} ({_reason(e)})", retry=path)
    else:
        return _probed(conn, path)

    try:
        moved = move_aside(path)
    except OSError as e:
        return _in_memory(f"the history database {path} is damaged ({reason}) and could not be moved aside ({_reason(e)})")
    try:
        conn = _open_file(path, busy_timeout_s)
    except (_Damaged, HistoryError, sqlite3.Error, OSError) as e:
        return _in_memory(f"the history database {path} was damaged and moved to {moved.name}; a new one could not be started ({e})")
    return Opened(
        conn,
        path,
        f"the history database was damaged ({reason}); it was moved to {moved} and a new one started",
    )


def _probed(conn: sqlite3.Connection, path: Path) -> Opened:
    """The opened file, with ``writable`` from one committed no-op write."""
    problem = probe_write(conn)
    if problem is None:
        return Opened(conn, path)
    return Opened(conn, path, unwritable_warning(path, problem), write_error=problem)


def probe_write(conn: sqlite3.Connection) -> str | None:
    """Commit a write that changes nothing (the schema version, set to itself): None when
    it worked, else why not ("database or disk is full", "attempt to write a readonly database")."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute(f"PRAGMA user_version = {version_of(conn)}")
        conn.execute("COMMIT")
    except sqlite3.Error as e:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        return str(e) or type(e).__name__
    return None


def unwritable_warning(path: Path | None, problem: str) -> str:
    where = f"the history database {path}" if path is not None else "the history database"
    return (f"cannot save the chat history: {where} cannot be written ({problem}); "
            "the chat goes on in memory and is saved when writing works again")


def connect(target: str, busy_timeout_s: float) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), usable from any thread."""
    conn = sqlite3.connect(target, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.create_function("casefold", 1, _casefold, deterministic=True)
    return conn


def _open_file(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    if path.exists():
        _check_existing(path, busy_timeout_s)
    conn = connect(str(path), busy_timeout_s)
    try:
        _set_wal(conn, busy_timeout_s)
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a commit survives a killed process
        migrate(conn)
        return conn
    except sqlite3.DatabaseError as e:
        conn.close()
        if _is_damage(e):
            raise _Damaged(str(e)) from e
        raise
    except BaseException:
        conn.close()
        raise


def _check_existing(path: Path, busy_timeout_s: float) -> None:
    """Look at an existing file through a read-only connection, which changes nothing:
    a read-write one would checkpoint a leftover WAL into a damaged file when closed,
    or switch a newer anechat's database to WAL before we knew its version."""
    try:
        conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True, timeout=busy_timeout_s)
    except sqlite3.Error:
        return  # cannot even read it: the read-write open below says why
    try:
        found = version_of(conn)
        if found > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"the history database has schema version {found}; this anechat knows up to {SCHEMA_VERSION}",
                hint="upgrade anechat to open it (it was left untouched)",
            )
        problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        if problems != ["ok"]:
            lines = [ln for p in problems for ln in str(p).splitlines() if ln and not ln.startswith("***")]
            raise _Damaged(f"integrity check failed: {lines[0] if lines else problems[0]}")
    except sqlite3.DatabaseError as e:
        if _is_damage(e):
            raise _Damaged(str(e)) from e
        raise
    finally:
        conn.close()


def _set_wal(conn: sqlite3.Connection, busy_timeout_s: float) -> None:
    # Switching a new file to WAL needs an exclusive lock; a process opening the same
    # new file at the same moment may hold it briefly, so retry within the busy timeout.
    deadline = time.monotonic() + busy_timeout_s
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            break
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"could not switch the database to WAL mode (got {mode!r})")


def _is_damage(e: sqlite3.DatabaseError) -> bool:
    code = getattr(e, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (SQLITE_CORRUPT, SQLITE_NOTADB)
    text = str(e).lower()
    return "not a database" in text or "malformed" in text


def move_aside(path: Path) -> Path:
    """Rename ``path`` (and its -wal/-shm files) to ``<stem>.corrupt-<UTC time>[-n]<suffix>``.

    Never replaces an existing file: a free name is found first. Returns the new path.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    n = 1
    while True:
        tag = f".corrupt-{stamp}" + (f"-{n}" if n > 1 else "")
        target = path.with_name(f"{path.stem}{tag}{path.suffix}")
        taken = [target, *(Path(str(target) + c) for c in _COMPANIONS)]
        if not any(p.exists() for p in taken):
            break
        n += 1
    for companion in _COMPANIONS:
        side = Path(str(path) + companion)
        if side.exists():
            os.rename(side, str(target) + companion)
    os.rename(path, target)
    return target


def _in_memory(problem: str, *, retry: Path | None = None) -> Opened:
    conn = connect(":memory:", 1.0)
    migrate(conn)
    if retry is not None:
        return Opened(conn, None, f"{problem}; chat history is kept in memory for now and saved when the database "
                      "can be written again", write_error=problem, retry_path=retry)
    return Opened(conn, None, f"{problem}; chat history is kept in memory only and will be lost when anechat exits")


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e) or type(e).__name__


def _casefold(value: object) -> object:
    return value.casefold() if isinstance(value, str) else value
