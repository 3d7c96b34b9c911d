"""The message box: multi-line, Enter sends, Ctrl+J inserts a newline, Up/Down recall history."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

#: keys that insert a line break instead of sending (terminals send Ctrl+J for
#: Shift+Enter only in some setups, so Ctrl+J is the one that always works)
NEWLINE_KEYS = ("ctrl+j", "shift+enter", "alt+enter")
#: pastes longer than this are held aside and shown as one marker line (a text box
#: re-wrapping a megabyte on every key press would freeze the app)
BIG_PASTE_CHARS = 20_000


class ChatInput(TextArea):
    """Enter sends; Ctrl+J (or Shift/Alt+Enter where the terminal reports them) adds a line.

    Up on the first line and Down on the last line walk through sent messages.
    A very long paste shows as a marker such as ``[pasted text #1 · 1,048,576 characters]``
    and is sent in full; deleting the marker drops it.
    """

    class Submitted(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

    def __init__(self, *, id: str | None = None, blink: bool = True) -> None:
        super().__init__(
            "",
            id=id,
            soft_wrap=True,
            tab_behavior="focus",
            show_line_numbers=False,
            compact=True,
            highlight_cursor_line=False,
            placeholder="Message — Enter sends · Ctrl+J new line · ↑↓ history",
        )
        self.cursor_blink = blink
        self.sent: list[str] = []
        self._browsing: int | None = None  # index into history while walking it
        self._draft = ""
        self.pastes: dict[str, str] = {}

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            event.stop()
            event.prevent_default()
            self.submit()
            return
        if event.key in NEWLINE_KEYS:
            event.stop()
            event.prevent_default()
            self.insert("\n")
        # anything else: TextArea's own handler runs next (Textual dispatches along the MRO)

    async def _on_paste(self, event: events.Paste) -> None:
        if len(event.text) <= BIG_PASTE_CHARS:
            return  # TextArea inserts it
        event.prevent_default()
        marker = f"[pasted text #{len(self.pastes) + 1} · {len(event.text):,} characters]"
        self.pastes[marker] = event.text
        self.insert(marker)

    def expanded(self, text: str) -> str:
        """``text`` with paste markers replaced by what was pasted."""
        for marker, body in self.pastes.items():
            if marker in text:
                text = text.replace(marker, body)
        return text

    def submit(self) -> None:
        text = self.text
        if not text.strip():
            self.post_message(self.Submitted(""))
            return
        if not self.sent or self.sent[-1] != text:
            self.sent.append(text)
        self._browsing = None
        self._draft = ""
        self.clear()
        self.post_message(self.Submitted(self.expanded(text)))

    # -- history ----------------------------------------------------------------------
    def action_cursor_up(self, select: bool = False) -> None:
        if select or self.cursor_location[0] > 0 or not self.sent:
            super().action_cursor_up(select)
            return
        if self._browsing is None:
            self._draft = self.text
            self._browsing = len(self.sent) - 1
        elif self._browsing > 0:
            self._browsing -= 1
        self._show(self.sent[self._browsing], at_end=False)

    def action_cursor_down(self, select: bool = False) -> None:
        last_row = self.document.line_count - 1
        if select or self._browsing is None or self.cursor_location[0] < last_row:
            super().action_cursor_down(select)
            return
        if self._browsing < len(self.sent) - 1:
            self._browsing += 1
            self._show(self.sent[self._browsing], at_end=True)
        else:
            self._browsing = None
            self._show(self._draft, at_end=True)

    def _show(self, text: str, *, at_end: bool) -> None:
        self.load_text(text)
        self.move_cursor(self.document.end if at_end else (0, len(self.document[0])))
