"""One answer in flight: the engine thread writes into a :class:`TurnBuffer`, the UI
drains it on a timer. Nothing is posted to the event loop per token.
"""

from __future__ import annotations

import gc
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from anechat.chat.controller import ChatController
from anechat.engines.base import CancelToken, GenerationStats, TextDelta

from anechat.tui.errors import error_line

# C0/C1 control characters except tab and newline, plus lone carriage returns: a model
# may emit them and a terminal would act on them (escape sequences, bells, cursor moves);
# and bidi overrides/isolates, which make text read differently from what it is.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean_text(text: str) -> str:
    """Model output made safe to render: control characters dropped, tabs as spaces."""
    return _CONTROL.sub("", text.replace("\r\n", "\n")).replace("\t", "    ")


@dataclass
class Drained:
    """What arrived since the last drain."""

    text: str = ""
    tokens: int = 0
    decode_tps: float = 0.0
    ttft_s: float | None = None
    done: bool = False
    stats: GenerationStats | None = None
    error: str | None = None


@dataclass
class TurnBuffer:
    """Thread-safe accumulator shared by the engine thread (writer) and the UI (reader)."""

    clock: Callable[[], float] = time.perf_counter
    started: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _parts: list[str] = field(default_factory=list, repr=False)
    _tokens: int = 0
    _decode_tps: float = 0.0
    _first_token_at: float | None = None
    _stats: GenerationStats | None = None
    _error: str | None = None
    _done: bool = False

    def __post_init__(self) -> None:
        self.started = self.clock()

    def push(self, delta: TextDelta) -> None:
        now = self.clock()
        with self._lock:
            if self._first_token_at is None:
                self._first_token_at = now
            if delta.text:
                self._parts.append(delta.text)
            self._tokens = delta.generation_tokens or self._tokens + len(delta.token_ids)
            self._decode_tps = delta.decode_tps

    def finish(self, stats: GenerationStats | None = None, error: str | None = None) -> None:
        with self._lock:
            self._stats = stats if stats is not None else self._stats
            self._error = error if error is not None else self._error
            self._done = True

    @property
    def done(self) -> bool:
        with self._lock:
            return self._done

    def drain(self) -> Drained:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            ttft = None if self._first_token_at is None else self._first_token_at - self.started
            return Drained(text, self._tokens, self._decode_tps, ttft, self._done, self._stats, self._error)


_frozen = 0


def freeze_heap() -> None:
    """While an answer streams, keep Python's full garbage collections short.

    A full collection walks every tracked object (the app's widgets, the model's
    Python objects, the tokenizer...) — a few hundred ms with the GIL held, during
    which the engine thread cannot hand out a token. ``gc.freeze()`` moves what
    exists now out of the collector's sight; :func:`thaw_heap` gives it back when
    the answer ends, so nothing is kept for good.
    """
    global _frozen
    if _frozen == 0:
        gc.freeze()
    _frozen += 1


def thaw_heap() -> None:
    global _frozen
    if _frozen > 0:
        _frozen -= 1
        if _frozen == 0:
            gc.unfreeze()


def run_turn(controller: ChatController, text: str, cancel: CancelToken, buffer: TurnBuffer) -> None:
    """Blocking: stream one answer into ``buffer``. Never raises (errors end up in the buffer)."""
    try:
        for event in controller.send(text, cancel):
            if isinstance(event, TextDelta):
                buffer.push(event)
            elif isinstance(event, GenerationStats):
                buffer.finish(stats=event, error=event.error)
        buffer.finish()
    except Exception as exc:  # never let an engine bug take the app down
        buffer.finish(error=error_line(exc))
