"""The sessions list: every saved chat, newest first, searchable by text.

Keys: type to search (titles and messages) · ↑↓ move · Enter opens · F2 or Ctrl+T
renames · Ctrl+D deletes (after a y/n question) · Ctrl+N starts a new chat · Esc closes.

The screen reads and writes the history store off the event loop; what to do with
the chat (open a session, start a new one, forget a deleted one) is handed back
to the main screen as a :class:`SessionsResult`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from anechat.history import HistoryError, HistoryStore, SessionSummary
from anechat.history.records import local_time
from anechat.safe_text import sanitize_for_terminal

from anechat.tui.screens.session_dialogs import ConfirmDialog, RenameDialog

#: sessions listed at once (a search finds older ones)
LIST_LIMIT = 200
UNTITLED = "(untitled)"


@dataclass(frozen=True)
class SessionsResult:
    """What the person chose: ``action`` "open" (``session_id``), "new", or None (closed).
    ``deleted``: the sessions deleted meanwhile (the open chat may be one of them)."""

    action: str | None
    session_id: str | None = None
    deleted: frozenset[str] = frozenset()


def model_label(model: str) -> str:
    """A model as the list shows it: a folder by its name, a catalog name as it is."""
    if not model:
        return "no model"
    path = Path(model)
    return path.name if len(path.parts) > 1 else model


def session_line(summary: SessionSummary, current: bool = False) -> Text:
    """Two lines for the list: the title, then id · model · engine · messages · last change."""
    line = Text(sanitize_for_terminal(summary.title or UNTITLED), style="bold")
    if current:
        line.append("  (open now)", style="italic")
    n = summary.message_count
    facts = [
        summary.short_id,
        sanitize_for_terminal(model_label(summary.model)),
        summary.engine or "no engine",
        f"{n} message{'s' if n != 1 else ''}",
        local_time(summary.updated),
    ]
    line.append("\n" + " · ".join(facts), style="dim")
    return line


class SessionsScreen(ModalScreen[SessionsResult]):
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("down", "move(1)", "Next", show=False),
        Binding("up", "move(-1)", "Previous", show=False),
        Binding("enter", "open", "Open", priority=True),
        Binding("f2,ctrl+t", "rename", "Rename", priority=True),
        Binding("ctrl+d", "delete", "Delete", priority=True),
        Binding("ctrl+n", "new_chat", "New chat", priority=True),
    ]
    DEFAULT_CSS = """
    SessionsScreen #sessions-dialog { width: 96; }
    SessionsScreen #sessions-list { height: auto; max-height: 20; margin: 1 0 0 0; }
    SessionsScreen #sessions-detail { height: auto; margin: 1 0 0 0; color: $text-muted; }
    """

    def __init__(self, get_store: Callable[[], Awaitable[HistoryStore | None]], current_id: str | None = None) -> None:
        """``get_store``: waits for the app's history store (None when history is off);
        ``current_id``: the session open in the chat, marked in the list."""
        super().__init__(classes="modal")
        self._get_store = get_store
        self.current_id = current_id
        self.store: HistoryStore | None = None
        self.shown: list[SessionSummary] = []
        self.snippets: dict[str, str] = {}  # session id -> the first matching message, while searching
        self.deleted: set[str] = set()
        self.listed = 0  # how many times the list was filled (tests wait on it)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="sessions-dialog") as box:
            box.border_title = "Sessions"
            yield Input(placeholder="type to search titles and messages", id="sessions-search", compact=True)
            yield OptionList(id="sessions-list")
            yield Static("", id="sessions-detail")
            yield Label(
                "Enter opens · F2/Ctrl+T renames · Ctrl+D deletes · Ctrl+N new chat · Esc closes", classes="hint"
            )

    def on_mount(self) -> None:
        self._detail(Text("reading the chat history…", style="italic"))
        self.query_one(Input).focus()
        self.refresh_list()

    # -- the list -------------------------------------------------------------------
    @property
    def query_text(self) -> str:
        return self.query_one("#sessions-search", Input).value.strip()

    def refresh_list(self, keep: str | None = None) -> None:
        """Read the sessions again (matching the search text), keeping ``keep`` highlighted."""
        self._fill(self.query_text, keep)

    @work(exclusive=True, group="sessions-list")
    async def _fill(self, query: str, keep: str | None) -> None:
        if self.store is None:
            self.store = await self._get_store()
        store = self.store
        if store is None:
            self._show([], keep, "chat history is off: nothing is saved")
            return
        try:
            found = await asyncio.to_thread(store.list_sessions, query or None, LIST_LIMIT)
            hits = await asyncio.to_thread(store.search, query, LIST_LIMIT) if query else []
        except HistoryError as exc:
            self._show([], keep, f"could not read the chat history: {exc}")
            return
        self.snippets = {}
        for hit in reversed(hits):  # newest last, so the newest match per session wins
            self.snippets[hit.session_id] = f"{hit.role}: {hit.snippet}"
        self._show(found, keep, None)

    def _show(self, found: list[SessionSummary], keep: str | None, problem: str | None) -> None:
        self.shown = list(found)
        options = self.query_one("#sessions-list", OptionList)
        options.clear_options()
        for summary in self.shown:
            options.add_option(Option(session_line(summary, summary.id == self.current_id), id=summary.id))
        if self.shown:
            ids = [s.id for s in self.shown]
            options.highlighted = ids.index(keep) if keep in ids else 0
        self.listed += 1
        if problem:
            self._detail(Text(problem, style="bold red"))
        else:
            self._show_detail()

    def _current(self) -> SessionSummary | None:
        index = self.query_one("#sessions-list", OptionList).highlighted
        if index is None or not 0 <= index < len(self.shown):
            return None
        return self.shown[index]

    @on(OptionList.OptionHighlighted)
    def _show_detail(self) -> None:
        summary = self._current()
        if summary is None:
            if self.query_text:
                self._detail(Text(f"no session mentions {self.query_text!r}", style="italic"))
            else:
                self._detail(Text("no saved chats yet: what you send is saved here", style="italic"))
            return
        where = "in memory only (not saved to disk)" if self.store is not None and not self.store.persistent else ""
        lines = Text(f"{len(self.shown)} session{'s' if len(self.shown) != 1 else ''} {where}".rstrip())
        if len(self.shown) >= LIST_LIMIT:
            lines.append(f" (the {LIST_LIMIT} most recent: search to find older ones)")
        model = sanitize_for_terminal(summary.model) if summary.model else "no model recorded"
        lines.append(f"\n{model} on {summary.engine or 'no engine'} · started {local_time(summary.created)}")
        found = self.snippets.get(summary.id)
        if found:
            lines.append("\n" + sanitize_for_terminal(found), style="italic")
        self._detail(lines)

    def _detail(self, text: Text) -> None:
        self.query_one("#sessions-detail", Static).update(text)

    @on(Input.Changed, "#sessions-search")
    def _search_changed(self) -> None:
        self.refresh_list(keep=None)

    # -- actions --------------------------------------------------------------------
    def action_move(self, step: int) -> None:
        options = self.query_one("#sessions-list", OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    @on(OptionList.OptionSelected)
    def action_open(self) -> None:
        summary = self._current()
        if summary is None:
            self.notify("no session to open", severity="warning")
            return
        self.dismiss(SessionsResult("open", summary.id, frozenset(self.deleted)))

    def action_new_chat(self) -> None:
        self.dismiss(SessionsResult("new", None, frozenset(self.deleted)))

    def action_close(self) -> None:
        self.dismiss(SessionsResult(None, None, frozenset(self.deleted)))

    @work(exclusive=True, group="sessions-edit")
    async def action_rename(self) -> None:
        summary = self._current()
        if summary is None or self.store is None:
            return
        title = await self.app.push_screen_wait(RenameDialog(summary.title))
        if title is None:
            return
        try:
            await asyncio.to_thread(self.store.rename, summary.id, title)
        except HistoryError as exc:
            self.notify(f"not renamed: {exc}", severity="error", markup=False)
            return
        self.refresh_list(keep=summary.id)

    @work(exclusive=True, group="sessions-edit")
    async def action_delete(self) -> None:
        summary = self._current()
        if summary is None or self.store is None:
            return
        n = summary.message_count
        question = f"Delete “{sanitize_for_terminal(summary.title or UNTITLED)}” and its {n} message{'s' if n != 1 else ''}? This cannot be undone."
        if summary.id == self.current_id:
            question += " It is the chat open now: a new chat starts in its place."
        if not await self.app.push_screen_wait(ConfirmDialog(question, "Delete session")):
            return
        try:
            await asyncio.to_thread(self.store.delete, summary.id)
        except HistoryError as exc:
            self.notify(f"not deleted: {exc}", severity="error", markup=False)
            return
        self.deleted.add(summary.id)
        self.notify(f"deleted “{sanitize_for_terminal(summary.title or UNTITLED)}”", markup=False)
        index = self.shown.index(summary)
        after = self.shown[index + 1] if index + 1 < len(self.shown) else self.shown[index - 1] if index else None
        self.refresh_list(keep=after.id if after else None)
