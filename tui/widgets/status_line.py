"""One line under the chat: model, engine and the runtime that really runs it, context use, state."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from anechat.chat.controller import LoadedModel
from anechat.safe_text import sanitize_for_terminal


class StatusLine(Static):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self.loaded: LoadedModel | None = None
        self.context_used: int | None = None
        self.context_size: int | None = None
        self.state = "no model — Ctrl+O picks one"

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

    def _render_line(self) -> None:
        line = Text()
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
        if self.state:
            if line:
                line.append("  ")
            line.append(self.state, style="italic")
        self.update(line)
