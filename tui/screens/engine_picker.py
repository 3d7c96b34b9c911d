"""Switch engine: every engine anechat knows, the ones that cannot run here shown
with their reason. The conversation stays; the next answer prefills it there."""

from __future__ import annotations

import time
from typing import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

from anechat.engines.base import Availability
from anechat.catalog.engines import ENGINE_NAMES, engine_availability

from anechat.tui.widgets.status_line import elapsed_text


class EnginePicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, current: str | None, check: Callable[[str], Availability] = engine_availability) -> None:
        super().__init__(classes="modal")
        self.current = current
        self._check = check
        self.found: dict[str, Availability] = {}

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="engine-dialog") as box:
            box.border_title = "Engine"
            yield OptionList(Option(self._checking_text(), disabled=True), id="engine-list")
            yield Label("Enter switches; the conversation continues on the new engine · Esc closes", classes="hint")

    def on_mount(self) -> None:
        self._started = time.monotonic()
        self._ticker = self.set_interval(1.0, self._tick)
        self.check_engines()

    def _checking_text(self, seconds: float = 0.0) -> Text:
        return Text(f"checking engines… {elapsed_text(seconds)}", style="italic")

    def _tick(self) -> None:
        """The check can take seconds (loading a backend): say how long it has taken so far."""
        if not self.found:
            options = self.query_one("#engine-list", OptionList)
            options.replace_option_prompt_at_index(0, self._checking_text(time.monotonic() - self._started))

    @work(thread=True, exclusive=True, group="engines")
    def check_engines(self) -> None:
        found = {}
        for name in ENGINE_NAMES:
            try:
                found[name] = self._check(name)
            except Exception as exc:
                found[name] = Availability(False, f"cannot check: {exc}")
        self.app.call_from_thread(self._show, found)

    def _show(self, found: dict[str, Availability]) -> None:
        self.found = found
        self._ticker.stop()
        options = self.query_one("#engine-list", OptionList)
        options.clear_options()
        for name, avail in found.items():
            prompt = Text(name, style="bold")
            if name == self.current:
                prompt.append("  (current)", style="italic")
            prompt.append("\n")
            if avail.ok:
                prompt.append(avail.runtime or avail.reason, style="dim")
            else:
                prompt.append(f"not available here: {avail.reason}", style="dim italic")
            options.add_option(Option(prompt, id=name, disabled=not avail.ok))
        for index, name in enumerate(found):
            if found[name].ok:
                options.highlighted = index
                break
        options.focus()

    @on(OptionList.OptionSelected, "#engine-list")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
