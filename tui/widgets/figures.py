"""Label/value rows as one Text (cheaper to paint than a Rich table, and redrawn
without a layout pass as long as the number of rows stays the same)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

#: labels are padded to the longest of the block, at least this wide and never cut
#: below the longest ("coreml active" fits whole)
LABEL_WIDTH = 10


def rows_text(rows: list[tuple[str, str | Text]]) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    width = max([LABEL_WIDTH, *(len(label) for label, _ in rows)])
    for i, (label, value) in enumerate(rows):
        if i:
            out.append("\n")
        if label:  # a row without a label (a state line) uses the whole width
            out.append(label.ljust(width), style="dim")
            out.append(" ")
        out.append(value if isinstance(value, Text) else Text(value))
    return out


class Figures(Static):
    """A block of rows (height: auto); a layout pass only when the row count changes."""

    def __init__(self, *, id: str | None = None, classes: str = "") -> None:
        super().__init__("", id=id, classes=classes)
        self._rows = -1
        self._shown: Text | None = None
        self.repaints = 0  # updates that changed what is shown

    def show_rows(self, rows: list[tuple[str, str | Text]]) -> None:
        """Show ``rows``; the same text as shown already is not repainted (over SSH every
        repaint of an unchanged panel costs bytes)."""
        text = rows_text(rows)
        if text == self._shown:
            return
        layout = len(rows) != self._rows
        self._rows = len(rows)
        self._shown = text
        self.repaints += 1
        self.update(text, layout=layout)
