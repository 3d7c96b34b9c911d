"""HistoryStore: chat sessions and messages in SQLite, written so that nothing is lost.

How a chat loop uses it::

    store = HistoryStore()                      # <data dir>/history.sqlite3
    if store.warning: show(store.warning)       # damaged file moved aside, or memory only
    sid = store.new_session(model, engine, system_prompt, params)
    store.add_user_message(sid, prompt)         # committed before generation starts
    mid = store.begin_answer(sid)               # an empty answer, status "partial"
    for event in session.generate(...):
        if isinstance(event, TextDelta):
            store.append_answer(mid, event.text)  # cheap: written at most every 0.25 s
        else:
            store.finish_answer(mid, stats=event) # final text, status from finish_reason

Every write is its own committed transaction in a WAL database, so whatever was
written survives the process being killed, and several processes can share the
file (``busy_timeout`` makes a writer wait its turn). The store is thread-safe.
The answer methods (an answer written as it streams) live in answers.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from anechat.history.answers import StreamedAnswers
from anechat.history.errors import InvalidInput, StorageError
from anechat.history import queries, values
from anechat.history.records import SearchHit, SessionRecord, SessionSummary, auto_title
from anechat.history.recovery import open_database

DB_NAME = "history.sqlite3"


def new_session_id() -> str:
    return uuid.uuid4().hex


def default_path() -> Path:
    from anechat.paths import data_dir

    return data_dir() / DB_NAME


class HistoryStore(StreamedAnswers):
    def __init__(
        self,
        path: Path | str | None = None,
        *,
        flush_interval_s: float = 0.25,
        flush_chars: int = 2048,
        busy_timeout_s: float = 10.0,
    ) -> None:
        opened = open_database(Path(path) if path is not None else default_path(), busy_timeout_s=busy_timeout_s)
        self._conn = opened.conn
        #: the database file, or None when history is only kept in memory
        self.path: Path | None = opened.path
        #: one line to show the person (damaged file moved aside, memory only...), or None
        self.warning: str | None = opened.warning
        #: why the last write failed (disk full, read-only file...); None once one works
        self.write_error: str | None = opened.write_error
        self._retry_path = opened.retry_path  # in memory for now; this file is tried again by reopen()
        self._busy_timeout_s = busy_timeout_s
        self.flush_interval_s = flush_interval_s
        self.flush_chars = flush_chars
        self._lock = threading.RLock()
        self._pending = {}  # StreamedAnswers: answer text not yet written

    @property
    def writable(self) -> bool:
        """False while writes fail (see :attr:`write_error`) or only reach memory for now."""
        return self.write_error is None and self._retry_path is None

    def reopen(self) -> bool:
        """A store in memory because its file could not be opened (full disk, I/O error)
        tries the file again; False while it still cannot be opened (True for any other
        store). What was written to memory meanwhile stays behind (ChatRecorder keeps a
        chat's writes until this works)."""
        with self._lock:
            if self._retry_path is None:
                return True
            opened = open_database(self._retry_path, busy_timeout_s=self._busy_timeout_s)
            if opened.path is None:
                opened.conn.close()
                return False
            if self._conn is not None:
                self._conn.close()
            self._conn, self.path, self.warning = opened.conn, opened.path, opened.warning
            self.write_error, self._retry_path = opened.write_error, None
            self._pending.clear()
            return True

    @property
    def persistent(self) -> bool:
        """False when the store fell back to memory (see :attr:`warning`)."""
        return self.path is not None

    # -- sessions -----------------------------------------------------------------

    def new_session(
        self,
        model: str = "",
        engine: str = "",
        system_prompt: str = "",
        params: Any = None,
        *,
        title: str = "",
        session_id: str | None = None,
    ) -> str:
        """Start a session; returns its id (32 hex characters; any unique prefix finds it).
        ``session_id`` records a session whose id the caller made earlier (with
        :func:`new_session_id`), e.g. one that could not be written when it began."""
        sid = new_session_id() if session_id is None else values.session_id(session_id)
        now = time.time()
        with self._write() as db:
            db.execute(
                "INSERT INTO sessions (id, title, created, updated, model, engine, system_prompt, params)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (sid, values.text("title", title).strip(), now, now, values.text("model", model),
                 values.text("engine", engine), values.text("system_prompt", system_prompt),
                 values.params_json(params)),
            )
        return sid

    def update_session(
        self,
        session_id: str,
        *,
        model: str | None = None,
        engine: str | None = None,
        system_prompt: str | None = None,
        params: Any = None,
    ) -> None:
        """Change what a session restores (e.g. the person switched model mid-chat)."""
        changes: dict[str, object] = {}
        for name, value in (("model", model), ("engine", engine), ("system_prompt", system_prompt)):
            if value is not None:
                changes[name] = values.text(name, value)
        if params is not None:
            changes["params"] = values.params_json(params)
        changes["updated"] = time.time()
        sets = ", ".join(f"{k} = ?" for k in changes)
        with self._write() as db:
            cur = db.execute(f"UPDATE sessions SET {sets} WHERE id = ?", (*changes.values(), session_id))
            if cur.rowcount == 0:
                raise queries.unknown_session(session_id)

    def rename(self, session_id: str, title: str) -> None:
        title = " ".join(values.text("title", title).split())
        if not title:
            raise InvalidInput("a session title cannot be empty")
        with self._write() as db:
            if db.execute("UPDATE sessions SET title = ? WHERE id = ?", (title, session_id)).rowcount == 0:
                raise queries.unknown_session(session_id)

    def delete(self, session_id: str) -> None:
        """Delete a session and its messages (ask the person first)."""
        with self._lock:
            with self._write() as db:
                ids = [r[0] for r in db.execute("SELECT id FROM messages WHERE session_id = ?", (session_id,))]
                if db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)).rowcount == 0:
                    raise queries.unknown_session(session_id)
            for mid in ids:
                self._pending.pop(mid, None)

    def resolve_id(self, prefix: str) -> str:
        """The full id of the one session whose id starts with ``prefix``."""
        with self._read() as db:
            return queries.resolve_id(db, prefix)

    def list_sessions(self, query: str | None = None, limit: int | None = 50) -> list[SessionSummary]:
        """Sessions, most recently updated first; ``query`` keeps those whose title or messages contain it."""
        with self._read() as db:
            return queries.list_sessions(db, query, limit)

    def get_session(self, session_id: str) -> SessionRecord:
        """A session with all its messages, oldest first."""
        with self._read() as db:
            return queries.get_session(db, session_id)

    def search(self, text: str, limit: int = 50) -> list[SearchHit]:
        """Messages containing ``text`` (case-insensitive), newest first."""
        with self._read() as db:
            return queries.search(db, text, limit)

    def export(self, session_id: str, format: str = "md") -> str:
        from anechat.history.export import render

        return render(self.get_session(session_id), format)

    # -- messages -----------------------------------------------------------------

    def add_user_message(self, session_id: str, text: str) -> int:
        """Store the person's message (committed when this returns); titles an untitled session."""
        text = values.text("message", text)
        if not text.strip():
            raise InvalidInput("the message is empty: nothing to store")
        now = time.time()
        with self._write() as db:
            mid = self._insert(db, session_id, "user", text, "complete", now)
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
            db.execute("UPDATE sessions SET title = ? WHERE id = ? AND title = ''", (auto_title(text), session_id))
        return mid

    def add_message(self, session_id: str, role: str, text: str, status: str = "complete") -> int:
        """Store a whole message of any role (imports, notes); chat loops use the methods around it."""
        if role not in ("system", "user", "assistant"):
            raise InvalidInput(f"unknown role {role!r}: use system, user or assistant")
        now = time.time()
        with self._write() as db:
            mid = self._insert(db, session_id, role, values.text("message", text), values.status(status), now)
            db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (now, session_id))
        return mid

    # -- life cycle ---------------------------------------------------------------

    def close(self) -> None:
        """Write pending text and close the database. Safe to call twice."""
        with self._lock:
            if self._conn is None:
                return
            self.flush()
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "HistoryStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self.flush()  # this process's streamed text shows up in its own reads
            with self._errors():
                yield self._connection()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One committed transaction; BEGIN IMMEDIATE takes the write lock up front (no upgrade deadlock)."""
        with self._lock, self._errors():
            db = self._connection()
            try:
                db.execute("BEGIN IMMEDIATE")
                yield db
                db.execute("COMMIT")
            except BaseException as e:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                if isinstance(e, sqlite3.OperationalError):
                    self.write_error = str(e)
                raise
            self.write_error = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as e:
            raise StorageError(f"history database error: {e}", hint=f"database: {self.path or 'in memory'}") from e

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError("the history store is closed")
        return self._conn

    def _insert(self, db, session_id, role, text, status, now, *, model=None, engine=None) -> int:
        try:
            cur = db.execute(
                "INSERT INTO messages (session_id, role, content, created, status, model, engine)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (session_id, role, text, now, status, model, engine),
            )
        except sqlite3.IntegrityError as e:
            if "FOREIGN KEY" in str(e):
                raise queries.unknown_session(session_id) from e
            raise
        return int(cur.lastrowid)
