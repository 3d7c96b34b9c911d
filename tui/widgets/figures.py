"""Label/value rows as one Text (cheaper to paint than a Rich table, and redrawn
without a layout pass as long as the number of rows stays the same)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

LABEL_WIDTH = 10


def rows_text(rows: list[tuple[str, str | Text]]) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    for i, (label, value) in enumerate(rows):
        if i:
            out.append("\n")
        out.append(label.ljust(LABEL_WIDTH)[:LABEL_WIDTH], style="dim")
        out.append(" ")
        out.append(value if isinstance(value, Text) else Text(value))
    return out


class Figures(Static):
    """A block of rows (height: auto); a layout pass only when the row count changes."""

    def __init__(self, *, id: str | None = None, classes: str = "") -> None:
        super().__init__("", id=id, classes=classes)
        self._rows = -1

    def show_rows(self, rows: list[tuple[str, str | Text]]) -> None:
        layout = len(rows) != self._rows
        self._rows = len(rows)
        self.update(rows_text(rows), layout=layout)
