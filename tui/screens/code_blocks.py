"""Copy one fenced code block from the last answer."""

from __future__ import annotations

import re

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option

_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<lang>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)


def code_blocks(markdown: str) -> list[tuple[str, str]]:
    """(language, code) of each complete fenced block, in order."""
    return [(m.group("lang").strip(), m.group("body").rstrip("\n")) for m in _FENCE.finditer(markdown)]


class CodeBlockPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "close", "Close")]

    def __init__(self, blocks: list[tuple[str, str]]) -> None:
        super().__init__(classes="modal")
        self.blocks = blocks

    def compose(self) -> ComposeResult:
        options = []
        for i, (lang, code) in enumerate(self.blocks, 1):
            first = next((line for line in code.splitlines() if line.strip()), "")
            prompt = Text(f"{i}. {lang or 'code'}", style="bold")
            prompt.append(f" · {len(code.splitlines())} lines\n", style="dim")
            prompt.append(first[:70], style="dim")
            options.append(Option(prompt, id=str(i - 1)))
        with Vertical(classes="dialog", id="code-dialog") as box:
            box.border_title = "Copy a code block"
            yield OptionList(*options, id="code-list")
            yield Label("Enter copies (OSC 52 — works over SSH) · Esc closes", classes="hint")

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.blocks[int(event.option.id)][1])

    def action_close(self) -> None:
        self.dismiss(None)
