"""Thread -> UI hand-off for the compare screen.

The harness (:func:`anechat.compare.run_compare`, in a thread worker) calls the
feed for every event of every contestant; the screen drains it on a timer a few
times a second. Each contestant's answer goes through the same
:class:`~anechat.tui.stream_buffer.StreamBuffer` a chat turn uses, so a pane shows
the engine's own figures, as the chat's speed panel does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from anechat.compare import CompareEvent, CompareReport, Phase

from anechat.tui.stream_buffer import Drained, StreamBuffer


@dataclass(frozen=True)
class PaneState:
    """What one pane shows; ``stream.text`` holds only what arrived since the last drain."""

    phase: Phase = field(default_factory=lambda: Phase("waiting"))
    stream: Drained = field(default_factory=Drained)


class CompareFeed:
    """Routes the harness's events to one buffer per contestant; :meth:`drain` hands them to the UI."""

    def __init__(self, count: int) -> None:
        self._lock = threading.Lock()
        self._phases = [Phase("waiting") for _ in range(count)]
        self._streams = [StreamBuffer() for _ in range(count)]
        self._changed = [True] * count
        self.report: CompareReport | None = None
        self.error: str | None = None
        self.finished = False

    def __call__(self, index: int, event: CompareEvent) -> None:
        with self._lock:
            self._changed[index] = True
            if isinstance(event, Phase):
                self._phases[index] = event
            else:
                self._streams[index].push(event)

    def finish(self, report: CompareReport | None, error: str | None = None) -> None:
        with self._lock:
            self.report, self.error, self.finished = report, error, True

    def drain(self) -> list[PaneState | None]:
        """Per contestant, its state with the new text (None when nothing changed)."""
        out: list[PaneState | None] = []
        with self._lock:
            for i, stream in enumerate(self._streams):
                if not self._changed[i]:
                    out.append(None)
                    continue
                self._changed[i] = False
                out.append(PaneState(self._phases[i], stream.drain()))
        return out
