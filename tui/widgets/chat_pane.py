"""The conversation: user messages, streamed Markdown answers and notices.

Follows the bottom while answers stream (Textual's scroll anchor) unless the
person scrolled up; scrolling back to the end re-attaches it.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from rich.cells import cell_len
from rich.text import Text
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets._markdown import MarkdownStream

from anechat.safe_text import sanitize_for_terminal

#: a pasted megabyte is sent whole, but the pane shows only its start
MAX_SHOWN_CHARS = 4000


def _shown(text: str) -> str:
    if len(text) <= MAX_SHOWN_CHARS:
        return text
    return text[:MAX_SHOWN_CHARS] + f"\n… ({len(text):,} characters in all; the rest is sent but not shown)"


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    """One parser for every answer (Textual would build a new one per streamed fragment)."""
    return MarkdownIt("gfm-like")


class UserMessage(Static):
    """What the person sent (plain text: no markup is interpreted; control characters
    and escape sequences show as visible symbols, never reach the terminal)."""

    def __init__(self, text: str) -> None:
        super().__init__(Text(sanitize_for_terminal(_shown(text))), classes="message user")
        self.text = text


class Notice(Static):
    """One line from the app in the conversation: loads, engine switches, errors."""

    def __init__(self, text: str, kind: str = "info") -> None:
        super().__init__(Text(sanitize_for_terminal(text)), classes=f"notice {kind}")
        self.text = text
        self.kind = kind


class AssistantMessage(Vertical):
    """An answer, streamed in two speeds.

    - :meth:`write` (cheap, every frame): text not yet in the Markdown shows as
      plain text under it, in the rows it already has: no layout pass, nothing
      else on screen moves.
    - :meth:`flush` (costly, a few times a second at most): finished lines go to
      the Markdown widget through its ``MarkdownStream`` and the answer grows —
      a layout pass and a repaint of the whole chat pane as it scrolls.

    When the answer ends, :meth:`finish` renders it whole with one ``update()``.
    """

    def __init__(self) -> None:
        super().__init__(classes="message assistant streaming")
        self.text = ""
        self.fragments = 0  # pieces handed to the MarkdownStream
        self._stream: MarkdownStream | None = None
        self._lines = ""  # finished lines not yet handed to the stream
        self._tail = ""  # the line being written
        self._tail_rows = 1

    def compose(self):
        yield Markdown("", classes="answer-body", parser_factory=_parser)
        yield Static("", classes="answer-tail", markup=False)
        yield Static("", classes="answer-meta")

    @property
    def body(self) -> Markdown:
        return self.query_one(".answer-body", Markdown)

    @property
    def _tail_widget(self) -> Static:
        return self.query_one(".answer-tail", Static)

    def write(self, fragment: str) -> None:
        """Take new text; show the line being written (no layout: the screen does not move)."""
        if not fragment:
            return
        self.text += fragment
        head, newline, tail = (self._tail + fragment).rpartition("\n")
        if newline:
            self._lines += head + newline
        self._tail = tail
        self._tail_widget.update(Text(self._lines + self._tail), layout=False)

    async def flush(self) -> None:
        """Hand finished lines to the Markdown stream and let the answer grow on screen."""
        if self._lines:
            if self._stream is None:
                self._stream = Markdown.get_stream(self.body)
            lines, self._lines = self._lines, ""
            self.fragments += 1
            await self._stream.write(lines)
            self._tail_widget.update(Text(self._tail), layout=False)
        width = max(1, self._tail_widget.content_region.width or 80)
        rows = max(1, -(-cell_len(self._tail) // width))
        if rows != self._tail_rows:
            self._tail_rows = rows
            self._tail_widget.refresh(layout=True)

    async def finish(self, text: str | None, note: str = "", kind: str = "") -> None:
        """Stop streaming and render the whole answer once, so the final view is exact."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if text is not None:
            self.text = text
        self._lines = self._tail = ""
        self._tail_widget.update("")
        self.remove_class("streaming")
        await self.body.update(self.text)
        meta = self.query_one(".answer-meta", Static)
        meta.update(Text(note))
        meta.set_class(bool(note), "shown")
        if kind:
            meta.add_class(kind)


class ChatPane(VerticalScroll):
    """Messages, newest at the bottom."""

    def on_mount(self) -> None:
        self.anchor()

    async def add_user(self, text: str) -> UserMessage:
        widget = UserMessage(text)
        await self.mount(widget)
        return widget

    async def add_assistant(self) -> AssistantMessage:
        widget = AssistantMessage()
        await self.mount(widget)
        return widget

    async def add_notice(self, text: str, kind: str = "info") -> Notice:
        widget = Notice(text, kind)
        await self.mount(widget)
        return widget

    async def clear(self) -> None:
        await self.remove_children()
        self.anchor()

    def last_answer(self) -> AssistantMessage | None:
        answers = self.query(AssistantMessage)
        return answers.last() if answers else None
