"""One line under the chat: model, engine and the runtime that really runs it, context use, state.

While something takes time (a load, a first-use conversion, an engine switch, a long
prefill) the line leads with it: a spinner, what is happening, how far (when the
engine says), and the seconds it has taken so far — never a silent wait."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from anechat.chat.controller import LoadedModel
from anechat.safe_text import sanitize_for_terminal

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def elapsed_text(seconds: float) -> str:
    """'7 s', '2 min 05 s'."""
    seconds = max(0, int(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


class StatusLine(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.loaded: LoadedModel | None = None
        self.context_used: int | None = None
        self.context_size: int | None = None
        self.state = "no model — Ctrl+O picks one"
        self.activity: str | None = None  # what takes time now, shown first with its elapsed time
        self._activity_step = ""
        self._activity_since = 0.0
        self._ticks = 0
        self._ticker = None
        self._shown: Text | None = None

    def on_mount(self) -> None:
        self._render_line()

    def set_model(self, loaded: LoadedModel | None, context_size: int | None = None) -> None:
        self.loaded = loaded
        self.context_size = context_size
        self._render_line()

    def set_context(self, used: int | None) -> None:
        self.context_used = used
        self._render_line()

    def set_state(self, state: str) -> None:
        self.state = state
        self._render_line()

    # -- a wait the person sees ---------------------------------------------------------
    def begin(self, activity: str) -> None:
        """Something that takes time has started: show it with a spinner and elapsed seconds."""
        self.activity = activity
        self._activity_step = ""
        self._activity_since = self.app.clock()
        if self._ticker is None:
            self._ticker = self.set_interval(1.0, self._tick)
        self._render_line()

    def step(self, step: str, fraction: float | None = None) -> None:
        """How far the activity is (``fraction`` in 0..1 when known)."""
        self._activity_step = step if fraction is None else f"{step} {fraction:.0%}"
        self._render_line()

    def end(self) -> None:
        self.activity = None
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None
        self._render_line()

    @property
    def activity_text(self) -> str:
        """The activity as shown ('' when none): 'loading x on mlx · converting 40% · 12 s'."""
        if self.activity is None:
            return ""
        parts = [self.activity] + ([self._activity_step] if self._activity_step else [])
        parts.append(elapsed_text(self.app.clock() - self._activity_since))
        return " · ".join(parts)

    def _tick(self) -> None:
        self._ticks += 1
        self._render_line()

    def _render_line(self) -> None:
        line = Text(no_wrap=True, overflow="ellipsis")
        if self.activity is not None:  # first, so a narrow terminal cuts the model name, not this
            line.append(SPINNER[self._ticks % len(SPINNER)] + " ", style="bold")
            line.append(self.activity_text, style="italic")
            line.append("  ")
        if self.loaded is not None:
            lm = self.loaded
            line.append(sanitize_for_terminal(lm.name), style="bold")
            line.append(" · ")
            line.append(lm.engine, style="bold")
            if lm.runtime:
                line.append(f" · {lm.runtime}")
            if self.context_size:
                used = self.context_used or 0
                line.append(f" · ctx {used}/{self.context_size}")
        if self.state and self.activity is None:
            if line:
                line.append("  ")
            line.append(self.state, style="italic")
        if line != self._shown:  # an unchanged line is not repainted
            self._shown = line
            self.update(line)
