"""The conversation: user messages, streamed Markdown answers and notices.

Follows the bottom while answers stream (Textual's scroll anchor) unless the
person scrolled up; scrolling back to the end re-attaches it.

A long chat stays as cheap to draw as a short one: every layout pass walks every
widget in the pane, and a rendered answer is dozens of widgets (a list item is
four), so what lies more than a quarter screen away from view is *parked*: a finished
answer, or a block of an answer (a list, a code block, a table), keeps its exact
height while its insides are taken out of the layout, and comes back as soon as
scrolling brings it near.
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


#: drawn after the text while it streams
CURSOR = "▍"


def wrapped_rows(text: str, width: int) -> int:
    """Rows ``text`` fills at ``width`` cells, wrapping at any character (an estimate:
    word wrapping can need a row more, so callers keep one spare)."""
    width = max(1, width)
    return sum(max(1, -(-cell_len(line) // width)) for line in text.split("\n"))


class AssistantMessage(Vertical):
    """An answer, streamed in two speeds.

    - :meth:`write` (cheap, every frame): text not yet in the Markdown shows as
      plain text under it, in rows reserved ahead of time: no layout pass,
      nothing else on screen moves. It says when the text outgrew those rows.
    - :meth:`flush` (costly: a layout pass and a repaint of the chat pane; paced
      by what it costs): finished lines go to the Markdown widget through its
      ``MarkdownStream``, the answer grows, and the plain tail gets its rows for
      what comes next.

    When the answer ends, :meth:`finish` renders it whole with one ``update()``.
    """

    def __init__(self) -> None:
        super().__init__(classes="message assistant streaming")
        self.text = ""
        self.fragments = 0  # pieces handed to the MarkdownStream
        self._stream: MarkdownStream | None = None
        self._lines = ""  # finished lines not yet handed to the stream
        self._tail = ""  # the line being written
        self._tail_rows = 0  # rows given to the plain tail (0 = as the stylesheet says)
        self.rows_flushed = 0  # plain-text rows of the lines handed to the Markdown so far
        self.body = Markdown("", classes="answer-body", parser_factory=_parser)
        self.tail = Static("", classes="answer-tail", markup=False)
        self.meta = Static("", classes="answer-meta")

    def compose(self):
        yield self.body
        yield self.tail
        yield self.meta

    @property
    def streaming(self) -> bool:
        return self.has_class("streaming")

    def _width(self) -> int:
        return self.tail.content_region.width or self.content_region.width or 80

    def _plain(self) -> str:
        return self._lines + self._tail

    def _rows_needed(self) -> int:
        return wrapped_rows(self._plain() + CURSOR, self._width()) + 1  # + 1: word wrap's spare row

    def rows_written(self) -> int:
        """Rows the answer would fill as plain text so far (its pace, for reserving rows)."""
        return self.rows_flushed + self._rows_needed() - 1

    def write(self, fragment: str) -> bool:
        """Take new text and show it after the Markdown (no layout: the screen does not move).

        Returns True when the text needs more rows than the tail has: time to :meth:`flush`.
        """
        if fragment:
            self.text += fragment
            head, newline, tail = (self._tail + fragment).rpartition("\n")
            if newline:
                self._lines += head + newline
            self._tail = tail
            self.tail.update(Text(self._plain() + CURSOR), layout=False)
        return self._rows_needed() > self._tail_rows

    async def flush(self, reserve_rows: int = 0) -> None:
        """Hand finished lines to the Markdown stream and give the tail its rows again:
        what it shows now plus ``reserve_rows`` for the text still to come."""
        if self._lines:
            if self._stream is None:
                self._stream = Markdown.get_stream(self.body)
            lines, self._lines = self._lines, ""
            self.rows_flushed += wrapped_rows(lines.removesuffix("\n"), self._width())
            self.fragments += 1
            await self._stream.write(lines)
            self.tail.update(Text(self._tail + CURSOR), layout=False)
        self.reserve(reserve_rows)

    def reserve(self, rows: int) -> None:
        """Give the plain tail what it shows now plus ``rows`` more (a layout pass if that changes)."""
        rows = self._rows_needed() + max(0, rows)
        if rows != self._tail_rows:
            self._tail_rows = rows
            self.tail.styles.height = rows  # the one layout pass of this frame

    async def finish(self, text: str | None, note: str = "", kind: str = "") -> None:
        """Stop streaming and render the whole answer once, so the final view is exact."""
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        if text is not None:
            self.text = text
        self._lines = self._tail = ""
        self._tail_rows = 0
        self.tail.update("")
        self.tail.styles.height = None  # back to the stylesheet (hidden once not streaming)
        self.remove_class("streaming")
        await self.body.update(self.text)
        if self.body.children:  # the answer ends with its text, not its last block's spacing
            # (set once here: a :last-child rule would re-style every block on every mount)
            last = self.body.children[-1]
            top, right, _bottom, left = last.styles.margin
            last.styles.margin = (top, right, 0, left)
        self.meta.update(Text(note))
        self.meta.set_class(bool(note), "shown")
        if kind:
            self.meta.add_class(kind)


class ChatPane(VerticalScroll):
    """Messages, newest at the bottom."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._parked: dict = {}  # widget -> its children taken out of the layout
        self._parked_width: int | None = None

    def on_mount(self) -> None:
        self.anchor()

    # -- parking what lies far from view -------------------------------------------
    def _near_view(self, widget) -> bool:
        """Within a quarter screen of what shows, in the pane's scroll-independent
        coordinates: it holds the moment ``scroll_y`` changes, so what a scroll brings
        into view is back before that scroll is painted."""
        if widget.parent is self:
            region = widget.virtual_region_with_margin
            top, bottom = region.y, region.bottom
        else:  # a block: its offset inside its answer does not depend on the scroll
            answer = next(a for a in widget.ancestors if a.parent is self)
            top = answer.virtual_region.y + widget.region.y - answer.region.y
            bottom = top + widget.outer_size.height
        height = self.scrollable_content_region.height
        margin = max(1, height // 4)
        return bottom > self.scroll_y - margin and top < self.scroll_y + height + margin

    def answers(self) -> list[AssistantMessage]:
        return [child for child in self.children if isinstance(child, AssistantMessage)]

    def is_parked(self, widget) -> bool:
        return widget in self._parked

    def _park(self, widget) -> None:
        height = widget.outer_size.height
        shown = [child for child in widget.children if child.display]
        if widget in self._parked or not height or not shown:
            return
        widget.styles.height = height
        for child in shown:
            child.display = False
        self._parked[widget] = shown

    def _unpark(self, widget) -> None:
        shown = self._parked.pop(widget, None)
        if shown is None:
            return
        for child in shown:
            child.styles.display = None  # back to the stylesheet (and the layout is told)
        widget.styles.height = None

    def park_far(self) -> int:
        """Park finished answers, and blocks of the others, more than a screen from view
        (the block being written never); returns how many widgets are parked."""
        self._parked_width = self.size.width
        for answer in self.answers():
            if not answer.streaming and not self._near_view(answer):
                self._park(answer)
            elif not self.is_parked(answer):
                blocks = list(answer.body.children)
                for block in blocks[:-1] if answer.streaming else blocks:
                    if block.children and not self._near_view(block):
                        self._park(block)
        return len(self._parked)

    def unpark_near(self) -> None:
        for widget in list(self._parked):
            if not widget.is_attached:
                del self._parked[widget]  # re-rendered since: nothing to give back
            elif not any(self.is_parked(a) for a in widget.ancestors) and self._near_view(widget):
                self._unpark(widget)

    def unpark_all(self) -> None:
        for widget in list(self._parked):
            self._unpark(widget)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._parked and round(old_value) != round(new_value):
            self.unpark_near()

    def on_resize(self, event) -> None:
        if self._parked_width is not None and event.size.width != self._parked_width:
            self._parked_width = None
            self.unpark_all()  # their heights were measured at the old width

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
        self._parked.clear()
        await self.remove_children()
        self.anchor()

    def last_answer(self) -> AssistantMessage | None:
        answers = self.query(AssistantMessage)
        return answers.last() if answers else None
