"""Messages that workers post to the UI (Textual's post_message is thread-safe)."""

from __future__ import annotations

from textual.message import Message

from anechat.metrics.gauges import Gauges


class GaugesSampled(Message):
    def __init__(self, gauges: Gauges) -> None:
        super().__init__()
        self.gauges = gauges


class LoadProgress(Message):
    def __init__(self, step: str, fraction: float | None) -> None:
        super().__init__()
        self.step = step
        self.fraction = fraction

