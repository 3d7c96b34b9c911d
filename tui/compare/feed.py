"""Thread -> UI hand-off for the compare screen.

The harness (:func:`anechat.compare.run_compare`, in a thread worker) calls the
feed for every event of every contestant; the screen drains it on a timer a few
times a second. Nothing is posted to the event loop per token.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from anechat.compare import CompareEvent, CompareReport, Phase
from anechat.engines.base import GenerationStats, TextDelta
from anechat.safe_text import sanitize_for_terminal


@dataclass
class PaneState:
    """What one pane shows; ``text`` holds only what arrived since the last drain."""

    phase: Phase = field(default_factory=lambda: Phase("waiting"))
    text: str = ""
    tokens: int = 0
    decode_tps: float = 0.0
    ttft_s: float | None = None
    stats: GenerationStats | None = None
    changed: bool = True


class CompareFeed:
    """Accumulates the harness's events per contestant; :meth:`drain` hands them to the UI."""

    def __init__(self, count: int, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._panes = [PaneState() for _ in range(count)]
        self._asked_at: list[float | None] = [None] * count
        self.report: CompareReport | None = None
        self.error: str | None = None
        self.finished = False

    def __call__(self, index: int, event: CompareEvent) -> None:
        now = self._clock()
        with self._lock:
            pane = self._panes[index]
            pane.changed = True
            if isinstance(event, Phase):
                pane.phase = event
                if event.phase == "generating":
                    self._asked_at[index] = now
            elif isinstance(event, TextDelta):
                if pane.ttft_s is None and self._asked_at[index] is not None:
                    pane.ttft_s = now - self._asked_at[index]
                pane.text += event.text
                pane.tokens = event.generation_tokens or pane.tokens
                pane.decode_tps = event.decode_tps or pane.decode_tps
            elif isinstance(event, GenerationStats):
                pane.stats = event
                pane.tokens = event.generation_tokens
                pane.ttft_s = event.ttft_s if event.generation_tokens else pane.ttft_s
                pane.decode_tps = event.decode_tps

    def finish(self, report: CompareReport | None, error: str | None = None) -> None:
        with self._lock:
            self.report, self.error, self.finished = report, error, True

    def drain(self) -> list[PaneState | None]:
        """Per contestant, its state with the new text (None when nothing changed)."""
        out: list[PaneState | None] = []
        with self._lock:
            for pane in self._panes:
                if not pane.changed:
                    out.append(None)
                    continue
                out.append(
                    PaneState(pane.phase, sanitize_for_terminal(pane.text), pane.tokens, pane.decode_tps, pane.ttft_s, pane.stats)
                )
                pane.text = ""
                pane.changed = False
        return out
