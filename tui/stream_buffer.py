"""One answer in flight, handed from the thread that generates it to the UI.

The generating thread (the app's engine thread for a chat turn, the compare
worker for a contestant) pushes the engine's events into a :class:`StreamBuffer`;
the UI drains it on a timer a few times a second. Nothing is posted to the event
loop per token.

The buffer only collects: the figures it hands out are the engine's own
(:class:`~anechat.engines.base.Figures` on each delta, the final
:class:`~anechat.engines.base.GenerationStats`), never recomputed here or in the
UI. Model text passes :func:`anechat.safe_text.sanitize_for_terminal` on its way
out (control characters shown visibly, escape sequences inert).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from anechat.engines.base import Event, Figures, GenerationStats, TextDelta
from anechat.safe_text import sanitize_for_terminal


@dataclass(frozen=True)
class Drained:
    """What the UI takes from a buffer at one drain."""

    text: str = ""  # text that arrived since the last drain, safe for a terminal
    figures: Figures | None = None  # the engine's latest figures; None before the first token
    stats: GenerationStats | None = None  # the engine's final record, once it arrived
    error: str | None = None
    done: bool = False  # the generating side has finished: nothing more will come

    @property
    def final_text(self) -> str | None:
        """The whole answer as the engine recorded it, safe for a terminal."""
        if self.stats is None or not self.stats.text:
            return None
        return sanitize_for_terminal(self.stats.text)


class StreamBuffer:
    """Thread-safe: one writer (the generating thread), one reader (the UI's timer)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[str] = []
        self._figures: Figures | None = None
        self._stats: GenerationStats | None = None
        self._error: str | None = None
        self._done = False

    def push(self, event: Event) -> None:
        """Take one engine event: a delta's text and figures, or the final stats."""
        with self._lock:
            if isinstance(event, TextDelta):
                if event.text:
                    self._parts.append(event.text)
                self._figures = event.figures
            elif isinstance(event, GenerationStats):
                self._stats = event
                self._figures = event.figures
                self._error = event.error or self._error

    def finish(self, error: str | None = None) -> None:
        """The generating side is done (with ``error`` when it failed outside the engine's stats)."""
        with self._lock:
            self._error = error or self._error
            self._done = True

    @property
    def done(self) -> bool:
        with self._lock:
            return self._done

    def drain(self) -> Drained:
        with self._lock:
            text = "".join(self._parts)
            self._parts.clear()
            return Drained(sanitize_for_terminal(text), self._figures, self._stats, self._error, self._done)
