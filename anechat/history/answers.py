"""An answer written as it streams: the part of :class:`~anechat.history.store.HistoryStore`
that takes the assistant's text delta by delta without a transaction per token.

    mid = store.begin_answer(sid)               # an empty answer, status "partial"
    store.append_answer(mid, event.text)        # cheap: written at most every 0.25 s
    store.finish_answer(mid, stats=event)       # final text, status from finish_reason

Text waits in memory until ``flush_interval_s`` has passed or ``flush_chars`` have
gathered since the answer's last write; a write that fails keeps it for the next try.
HistoryStore mixes this class in and provides what it writes through: the lock, the
connection, one committed transaction (``_write``), the row insert (``_insert``) and the
``warning`` / ``write_error`` fields.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
import time

from anechat.history import queries, values
from anechat.history.errors import HistoryError, UnknownMessage

#: how a finished generation's ``finish_reason`` maps to a message status
STATUS_FOR_FINISH = {"stop": "complete", "length": "complete", "cancelled": "partial", "error": "error"}


@dataclasses.dataclass
class _Pending:
    """Answer text received but not yet written."""

    parts: list[str]
    chars: int
    last_flush: float


class StreamedAnswers:
    """HistoryStore's answer methods (see the module's docstring)."""

    flush_interval_s: float
    flush_chars: int
    warning: str | None
    write_error: str | None
    _lock: threading.RLock
    #: answer text received but not yet written, by message id
    _pending: dict[int, _Pending]

    def begin_answer(self, session_id: str, *, model: str | None = None, engine: str | None = None) -> int:
        """Create the assistant's answer, empty and ``partial``, before its first token."""
        now = time.time()
        with self._write() as db:
            if model is None or engine is None:
                row = db.execute("SELECT model, engine FROM sessions WHERE id = ?", (session_id,)).fetchone()
                if row is None:
                    raise queries.unknown_session(session_id)
                model = row[0] if model is None else model
                engine = row[1] if engine is None else engine
            mid = self._insert(db, session_id, "assistant", "", "partial", now, model=model, engine=engine)
            self._pending[mid] = _Pending([], 0, time.monotonic())
        return mid

    def append_answer(self, msg_id: int, delta_text: str) -> bool:
        """Add streamed text to an answer. Cheap: the text is written (and committed) once
        ``flush_interval_s`` has passed or ``flush_chars`` have gathered since the last write.
        Returns True when this call wrote to the database. A failed write keeps the text
        for the next try and sets :attr:`warning` instead of raising into the token loop
        (an id that is no answer at all raises UnknownMessage)."""
        if not delta_text:
            return False
        with self._lock:
            pending = self._pending.get(msg_id)
            if pending is None:
                self._check_answer(msg_id)
                pending = self._pending[msg_id] = _Pending([], 0, time.monotonic())
            pending.parts.append(values.text("answer text", delta_text))
            pending.chars += len(delta_text)
            if pending.chars >= self.flush_chars or time.monotonic() - pending.last_flush >= self.flush_interval_s:
                return self._flush_one(msg_id, pending)
            return False

    def flush(self) -> None:
        """Write every answer's pending text now (e.g. before showing a sessions list)."""
        with self._lock:
            for mid, pending in list(self._pending.items()):
                self._flush_one(mid, pending)

    def finish_answer(
        self,
        msg_id: int,
        text: str | None = None,
        status: str | None = None,
        stats: Any = None,
    ) -> None:
        """Close an answer: its final ``text`` (default: what was appended), its ``status``
        (default: from ``stats.finish_reason`` — stop/length complete, cancelled partial,
        error error) and ``stats`` (a GenerationStats or a dict)."""
        stats_dict = values.stats_dict(stats)
        if status is None:
            status = STATUS_FOR_FINISH.get(str((stats_dict or {}).get("finish_reason")), "complete")
        status = values.status(status)
        with self._lock:
            with self._write() as db:
                row = db.execute("SELECT session_id, content FROM messages WHERE id = ?", (msg_id,)).fetchone()
                if row is None:
                    raise UnknownMessage(f"no message with id {msg_id}")
                pending = self._pending.get(msg_id)
                if text is None:
                    text = row[1] + ("".join(pending.parts) if pending else "")
                db.execute(
                    "UPDATE messages SET content = ?, status = ?, stats = ?, prompt_tokens = ?, generation_tokens = ?"
                    " WHERE id = ?",
                    (values.text("answer text", text), status, None if stats_dict is None else json.dumps(stats_dict),
                     values.int_or_none((stats_dict or {}).get("prompt_tokens")),
                     values.int_or_none((stats_dict or {}).get("generation_tokens")), msg_id),
                )
                db.execute("UPDATE sessions SET updated = ? WHERE id = ?", (time.time(), row[0]))
            self._pending.pop(msg_id, None)

    def _check_answer(self, msg_id: int) -> None:
        with self._errors():
            row = self._connection().execute("SELECT role FROM messages WHERE id = ?", (msg_id,)).fetchone()
        if row is None or row[0] != "assistant":
            raise UnknownMessage(f"no answer with id {msg_id}", hint="call begin_answer first")

    def _flush_one(self, msg_id: int, pending: _Pending) -> bool:
        if not pending.parts:
            return False
        chunk = "".join(pending.parts)
        try:
            self._connection().execute("UPDATE messages SET content = content || ? WHERE id = ?", (chunk, msg_id))
        except (sqlite3.Error, HistoryError) as e:
            self.write_error = str(e)
            self.warning = f"could not save the answer as it streams ({e}); will retry"
            return False
        self.write_error = None
        pending.parts.clear()
        pending.chars = 0
        pending.last_flush = time.monotonic()
        return True
