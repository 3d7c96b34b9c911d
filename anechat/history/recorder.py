"""ChatRecorder: records one chat into a HistoryStore and never stops it.

A chat loop cannot wait for the disk. When a write fails for a storage reason
(disk full, read-only file or mount, locked too long) the recorder keeps that
write and every later one in order, in memory, and tells the person once
(:meth:`take_warning`). At the next turn, no sooner than ``retry_interval_s``
after the last failure, it tries again and writes everything still pending as
soon as writing works. The conversation itself lives in the chat controller;
this only decides when it reaches the database.

Errors other than storage errors (the session was deleted meanwhile, ...) drop
the one write they concern, with a warning, and recording goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from anechat.history.errors import HistoryError, StorageError
from anechat.history.recovery import unwritable_warning
from anechat.history.store import HistoryStore


@dataclass
class Answer:
    """One answer being recorded; ``message_id`` is None until it is in the database."""

    session_id: str
    model: str | None
    engine: str | None
    message_id: int | None = None
    parts: list[str] = field(default_factory=list)
    finished: bool = False


class ChatRecorder:
    def __init__(self, store: HistoryStore, *, retry_interval_s: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.retry_interval_s = retry_interval_s
        self._clock = clock
        self._queue: list[Callable[[], object]] = []  # writes not made yet, oldest first
        self._failed_at: float | None = None  # when the last write failed; None while writing works
        self._warning: str | None = None
        # a store that could not write at open has already said so (store.warning)
        self._told = not store.writable
        if not store.writable:
            self._failed_at = float("-inf")

    # -- what a chat loop calls ---------------------------------------------------
    @property
    def pending(self) -> int:
        """Writes kept in memory because the database could not take them yet."""
        return len(self._queue)

    def take_warning(self) -> str | None:
        """The one line to show about a storage problem, once per outage; then None."""
        warning, self._warning = self._warning, None
        return warning

    def new_session(self, session_id: str, model: str, engine: str, system_prompt: str, params: Any) -> None:
        self._write(lambda: self.store.new_session(model, engine, system_prompt, params, session_id=session_id))

    def update_session(self, session_id: str, **settings: Any) -> None:
        self._write(lambda: self.store.update_session(session_id, **settings))

    def start_turn(self, session_id: str, text: str, *, model: str | None, engine: str | None) -> Answer:
        """Record the person's message and open the answer (empty, ``partial``)."""
        self._write(lambda: self.store.add_user_message(session_id, text))
        answer = Answer(session_id, model, engine)
        if self._up():
            self._write(lambda: self._begin(answer))
        return answer

    def append(self, answer: Answer, text: str) -> None:
        """Streamed text: written as it comes while the answer is in the database."""
        answer.parts.append(text)
        if answer.message_id is None or not self._up():
            return
        self.store.append_answer(answer.message_id, text)  # keeps what it cannot write; never raises
        if not self.store.writable:
            self._failed(self.store.write_error)

    def finish(self, answer: Answer, text: str | None = None, *, status: str | None = None, stats: Any = None) -> None:
        """Close the answer with its final text (default: what was appended), status and figures."""
        if answer.finished:
            return
        answer.finished = True
        final = "".join(answer.parts) if text is None else text
        self._write(lambda: self._finish(answer, final, status, stats))

    def retry(self) -> bool:
        """Try the pending writes now; True when nothing is pending any more."""
        self._drain()
        return not self._queue

    # -- internals ----------------------------------------------------------------
    def _up(self) -> bool:
        return self._failed_at is None and not self._queue and self.store.writable

    def _begin(self, answer: Answer) -> None:
        if answer.message_id is None:
            answer.message_id = self.store.begin_answer(answer.session_id, model=answer.model, engine=answer.engine)

    def _finish(self, answer: Answer, text: str, status: str | None, stats: Any) -> None:
        self._begin(answer)  # an answer that could not be opened is written whole
        self.store.finish_answer(answer.message_id, text, status=status, stats=stats)

    def _write(self, write: Callable[[], object]) -> None:
        self._queue.append(write)
        if self._failed_at is None or self._clock() - self._failed_at >= self.retry_interval_s:
            self._drain()

    def _drain(self) -> None:
        if self._queue and not self.store.reopen():
            self._failed(self.store.write_error or "the history database cannot be opened")
            return
        while self._queue:
            try:
                self._queue[0]()
            except StorageError as e:
                self._failed(self.store.write_error or e.message)
                return
            except HistoryError as e:  # not the disk: this one write cannot be made, ever
                self._warning = f"a chat history entry was not saved ({e})"
            self._queue.pop(0)
        if self._failed_at is not None:
            self._failed_at = None
            self._told = False  # a later outage is worth one more line

    def _failed(self, problem: str) -> None:
        self._failed_at = self._clock()
        if not self._told:
            self._told = True
            self._warning = unwritable_warning(self.store.path, problem)
