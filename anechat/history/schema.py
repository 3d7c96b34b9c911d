"""The history database schema, versioned with ``PRAGMA user_version``.

``MIGRATIONS[i]`` takes a database from version ``i`` to version ``i + 1``. A new
anechat that changes the schema appends a step; it never edits an old one. Each
step runs inside the caller's write transaction, so a database is never left
half-migrated, and two processes opening a fresh file at once migrate it once.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Sequence, Union

from anechat.history.errors import SchemaTooNew

Migration = Union[str, Callable[[sqlite3.Connection], None]]

_V1 = """
CREATE TABLE sessions (
    id            TEXT PRIMARY KEY,
    title         TEXT NOT NULL DEFAULT '',
    created       REAL NOT NULL,
    updated       REAL NOT NULL,
    model         TEXT NOT NULL DEFAULT '',
    engine        TEXT NOT NULL DEFAULT '',
    system_prompt TEXT NOT NULL DEFAULT '',
    params        TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE messages (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id        TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
    role              TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content           TEXT NOT NULL DEFAULT '',
    created           REAL NOT NULL,
    status            TEXT NOT NULL DEFAULT 'complete'
                      CHECK (status IN ('complete', 'partial', 'error')),
    model             TEXT,
    engine            TEXT,
    stats             TEXT,
    prompt_tokens     INTEGER,
    generation_tokens INTEGER
);
CREATE INDEX messages_by_session ON messages(session_id, id);
CREATE INDEX sessions_by_updated ON sessions(updated DESC);
"""

#: the steps, oldest first; the schema version of a database is how many ran
MIGRATIONS: tuple[Migration, ...] = (_V1,)
SCHEMA_VERSION = len(MIGRATIONS)


def version_of(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring ``conn``'s database up to ``len(migrations)``; return the version it had.

    The connection must be in autocommit mode (``isolation_level=None``). The version
    is read again after taking the write lock, so a racing process that migrated
    first is noticed and nothing runs twice.
    """
    target = len(migrations)
    found = version_of(conn)
    if found == target:
        return found
    if found > target:
        raise SchemaTooNew(
            f"the history database has schema version {found}; this anechat knows up to {target}",
            hint="upgrade anechat to open it (it was left untouched)",
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = version_of(conn)
        if found > target:
            raise SchemaTooNew(
                f"the history database has schema version {found}; this anechat knows up to {target}",
                hint="upgrade anechat to open it (it was left untouched)",
            )
        for version in range(found, target):
            step = migrations[version]
            if callable(step):
                step(conn)
            else:
                for statement in _statements(step):
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return found


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (``executescript`` would COMMIT our transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out
