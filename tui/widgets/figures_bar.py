"""The compact layout's one line of figures: when the side panels do not fit (80×24,
a tmux split) decode tok/s and the context gauge stay visible here, above the status
line. It reads the speed panel and the status line (the engine's figures, never its
own) and repaints only when its text changes."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from anechat.tui.widgets.speed_panel import SpeedPanel
from anechat.tui.widgets.status_line import StatusLine

#: how often a shown bar looks at the panels it mirrors
REFRESH_S = 0.5


def gauge(used: int, size: int, width: int = 8) -> str:
    filled = round(max(0.0, min(1.0, used / size)) * width) if size else 0
    return "█" * filled + "░" * (width - filled)


class FiguresBar(Static):
    def __init__(self, speed: SpeedPanel, status: StatusLine, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._speed = speed
        self._status = status
        self._shown: Text | None = None

    def on_mount(self) -> None:
        self.set_interval(REFRESH_S, self.refresh_figures)
        self.refresh_figures()

    def line(self) -> Text:
        """'decode 45.1 tok/s · TTFT 0.12 s · in 20 · out 40 · ctx ████░░░░ 60/512'."""
        speed = self._speed
        out = Text(no_wrap=True, overflow="ellipsis")
        decode = "—" if speed.decode_tps is None else f"{speed.decode_tps:.1f}"
        out.append(f"decode {decode} tok/s", style="bold")
        if speed.ttft_s is not None:
            out.append(f" · TTFT {speed.ttft_s:.2f} s")
        if speed.tokens_in is not None:
            out.append(f" · in {speed.tokens_in} · out {speed.tokens_out or 0}")
        size = self._status.context_size
        if size:
            used = self._status.context_used or 0
            out.append(f" · ctx {gauge(used, size)} {used}/{size}")
        if speed.state:
            out.append(f" · {speed.state}", style="italic")
        return out

    def refresh_figures(self) -> None:
        if not self.display:
            return
        line = self.line()
        if line != self._shown:
            self._shown = line
            self.update(line)
