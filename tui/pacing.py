"""How often to draw while an answer streams, from what drawing really costs.

On a small machine the engine keeps every core busy while it decodes; whatever
the UI thread spends on drawing is taken from the engine (measured here: 12% of
one core on the UI thread costs ~15% of decode speed on 2 cores). So each kind of
frame gets a share of one core, a *budget*: after a frame the :class:`Pacer`
reads how much CPU the UI thread used until the next check (the frame itself,
then Textual's layout and repaint that follow it) and waits ``cost / budget``
before the next one, within ``[min_gap_s, max_gap_s]``. A cheap frame on a fast
Mac comes again after ``min_gap_s``; a Markdown re-render that costs 80 ms on a
2-core Linux box comes every ~5 s, and the plain-text tail carries the text in
between.
"""

from __future__ import annotations

import time
from typing import Callable


class Pacer:
    """Cost-driven cadence for one kind of frame."""

    def __init__(
        self,
        budget: float,
        min_gap_s: float,
        max_gap_s: float,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        if budget <= 0 or min_gap_s < 0 or max_gap_s < min_gap_s:
            raise ValueError("a pacer needs budget > 0 and 0 <= min_gap_s <= max_gap_s")
        self.budget = budget
        self.min_gap_s = min_gap_s
        self.max_gap_s = max_gap_s
        self.clock = clock
        self.cpu_clock = cpu_clock
        self.gap_s = min_gap_s  # the wait after the last frame, from its measured cost
        self.last_at: float | None = None  # when the last frame was drawn
        self.last_cost_s: float | None = None
        self.frames = 0
        self._cpu_at_frame: float | None = None  # set while a frame's cost is being measured

    def due(self, now: float | None = None) -> bool:
        """Whether the next frame may be drawn now."""
        if self.last_at is None:
            return True
        return (self.clock() if now is None else now) - self.last_at >= self.gap_s

    def drew(self, now: float | None = None) -> None:
        """A frame was drawn (call as it starts): its cost is measured until :meth:`observe`."""
        self.observe()
        self.last_at = self.clock() if now is None else now
        self._cpu_at_frame = self.cpu_clock()
        self.frames += 1

    def observe(self) -> None:
        """Close the measurement of the last frame: the UI thread's CPU time since it started
        (layout and repaint included) sets the gap before the next one."""
        if self._cpu_at_frame is None:
            return
        cost = max(0.0, self.cpu_clock() - self._cpu_at_frame)
        self._cpu_at_frame = None
        self.last_cost_s = cost
        self.gap_s = min(self.max_gap_s, max(self.min_gap_s, cost / self.budget))

    @property
    def measuring(self) -> bool:
        return self._cpu_at_frame is not None
