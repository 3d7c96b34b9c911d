"""Find text in the chat (Ctrl+F, /search TEXT): a bar above the message box; every
message that holds the text is marked, the current one scrolled into view; Enter or
F3 goes to the next, Shift+Enter or Shift+F3 to the previous, Esc closes the bar."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.widgets import Input, Static


class SearchBar(Horizontal):
    DEFAULT_CSS = """
    SearchBar { height: 1; dock: bottom; }
    SearchBar Input { width: 1fr; height: 1; border: none; padding: 0 1; }
    SearchBar .search-count { width: auto; min-width: 12; color: $text-muted; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", show=False),
        Binding("shift+enter", "previous", "Previous", show=False),
    ]

    def __init__(self, search: "ChatSearch", text: str = "") -> None:
        super().__init__(id="search-bar")
        self.search = search
        self.input = Input(text, placeholder="find in this chat — Enter next · Shift+Enter previous · Esc closes")
        self.count = Static("", classes="search-count")

    def compose(self) -> ComposeResult:
        yield self.input
        yield self.count

    @on(Input.Changed)
    def _changed(self, event: Input.Changed) -> None:
        self.search.find(event.value)

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        self.search.step(1)

    def action_previous(self) -> None:
        self.search.step(-1)

    def action_close(self) -> None:
        self.search.close()


class ChatSearch:
    """The chat screen's search over the messages in its pane."""

    def __init__(self, chat) -> None:
        self.chat = chat
        self.bar: SearchBar | None = None
        self.query = ""
        self.hits: list = []
        self.current = -1

    async def open(self, text: str = "") -> None:
        """Show the bar (with ``text`` searched at once when given) and focus it."""
        if self.bar is None:
            self.bar = SearchBar(self, text)
            await self.chat.query_one("#chat-column").mount(self.bar, before=self.chat.chat_input)
        elif text:
            self.bar.input.value = text
        if text:
            self.find(text)
        self.bar.input.focus()

    def find(self, text: str) -> int:
        """Mark every message holding ``text`` (case-insensitive) and go to the newest; returns how many."""
        self._unmark()
        self.query = text
        needle = text.casefold()
        self.hits = [w for w in self.chat.pane.children if needle and needle in str(getattr(w, "text", "")).casefold()]
        for widget in self.hits:
            widget.add_class("search-hit")
        self.current = len(self.hits) - 1
        self._show()
        return len(self.hits)

    def step(self, direction: int) -> None:
        """Go to the next (1) or previous (-1) match, wrapping around."""
        self.hits = [w for w in self.hits if w.is_attached]
        if not self.hits:
            self._show()
            return
        self.current = (self.current + direction) % len(self.hits)
        self._show()

    def _show(self) -> None:
        for widget in self.hits:
            widget.set_class(False, "search-current")
        if self.bar is not None:
            if not self.query:
                self.bar.count.update("")
            else:
                shown = f"{self.current + 1}/{len(self.hits)}" if self.hits else "no match"
                self.bar.count.update(Text(shown))
        if self.hits:
            widget = self.hits[self.current]
            widget.add_class("search-current")
            pane = self.chat.pane
            pane.release_anchor()  # the person reads back: stop following the bottom
            pane.scroll_to_widget(widget, animate=False, top=True)

    def _unmark(self) -> None:
        for widget in self.hits:
            widget.remove_class("search-hit", "search-current")
        self.hits, self.current = [], -1

    def close(self) -> None:
        self._unmark()
        self.query = ""
        if self.bar is not None:
            self.bar.remove()
            self.bar = None
        self.chat.chat_input.focus()
