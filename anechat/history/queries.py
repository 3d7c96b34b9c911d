"""The history's reading queries, on an open connection (HistoryStore holds the connection,
its lock and the flush of streamed text before a read)."""

from __future__ import annotations

import sqlite3

from anechat.history import values
from anechat.history.errors import AmbiguousSession, InvalidInput, UnknownSession
from anechat.history.records import MessageRecord, SearchHit, SessionRecord, SessionSummary, snippet


def resolve_id(db: sqlite3.Connection, prefix: str) -> str:
    """The full id of the one session whose id starts with ``prefix``."""
    prefix = values.text("session id", prefix).strip().lower()
    if not prefix:
        raise InvalidInput("give a session id (or the first characters of one)")
    rows = [r[0] for r in db.execute(
        "SELECT id FROM sessions WHERE substr(id, 1, ?) = ? ORDER BY updated DESC LIMIT 6",
        (len(prefix), prefix),
    )]
    if not rows:
        raise UnknownSession(f"no session id starts with {prefix!r}", hint="see `anechat history list`")
    if len(rows) > 1:
        shown = ", ".join(r[: max(8, len(prefix) + 2)] for r in rows[:5])
        raise AmbiguousSession(
            f"session id {prefix!r} matches more than one session ({shown}{', ...' if len(rows) > 5 else ''})",
            hint="give more characters",
        )
    return rows[0]


def list_sessions(db: sqlite3.Connection, query: str | None = None, limit: int | None = 50) -> list[SessionSummary]:
    """Sessions, most recently updated first; ``query`` keeps those whose title or messages contain it."""
    where, args = "", []
    if query is not None and query.strip():
        needle = " ".join(query.split()).casefold()
        where = ("WHERE instr(casefold(s.title), ?) > 0 OR EXISTS (SELECT 1 FROM messages q"
                 " WHERE q.session_id = s.id AND instr(casefold(q.content), ?) > 0)")
        args = [needle, needle]
    sql = (
        "SELECT s.id, s.title, s.created, s.updated, s.model, s.engine,"
        " (SELECT count(*) FROM messages m WHERE m.session_id = s.id)"
        f" FROM sessions s {where} ORDER BY s.updated DESC, s.created DESC LIMIT ?"
    )
    rows = db.execute(sql, (*args, -1 if limit is None else int(limit))).fetchall()
    return [SessionSummary(*row) for row in rows]


def get_session(db: sqlite3.Connection, session_id: str) -> SessionRecord:
    """A session with all its messages, oldest first."""
    row = db.execute(
        "SELECT id, title, created, updated, model, engine, system_prompt, params FROM sessions WHERE id = ?",
        (session_id,),
    ).fetchone()
    if row is None:
        raise unknown_session(session_id)
    messages = [_message(r) for r in db.execute(
        f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE session_id = ? ORDER BY id", (session_id,)
    )]
    return SessionRecord(*row[:7], params=values.loads(row[7]) or {}, messages=messages)


def search(db: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    """Messages containing ``text`` (case-insensitive), newest first."""
    needle = " ".join(values.text("search text", text).split())
    if not needle:
        raise InvalidInput("give some text to search for")
    rows = db.execute(
        "SELECT m.session_id, s.title, m.id, m.role, m.content, m.created FROM messages m"
        " JOIN sessions s ON s.id = m.session_id WHERE instr(casefold(m.content), ?) > 0"
        " ORDER BY m.id DESC LIMIT ?",
        (needle.casefold(), int(limit)),
    ).fetchall()
    return [SearchHit(sid, title, mid, role, snippet(content, needle), created)
            for sid, title, mid, role, content, created in rows]


_MESSAGE_COLUMNS = "id, session_id, role, content, created, status, model, engine, stats, prompt_tokens, generation_tokens"


def _message(row: tuple) -> MessageRecord:
    columns = list(row)
    columns[8] = values.loads(columns[8])  # stats JSON
    return MessageRecord(*columns)


def unknown_session(session_id: str) -> UnknownSession:
    return UnknownSession(f"no session with id {session_id!r}", hint="see `anechat history list`")
