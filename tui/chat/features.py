"""What the chat screen does beyond sending a message: slash commands (with Tab
completion), regenerate (F5), edit and resend (F2), search (Ctrl+F, F3 / Shift+F3),
engine-and-model labels on answers and `/compare` inline. The keys of the first
three are in :data:`anechat.tui.chat.actions.ACTIONS` (footer and command palette);
the ones here are the helpers that need no footer entry."""

from __future__ import annotations

from textual.actions import SkipAction
from textual.binding import Binding
from textual.screen import Screen

from anechat.tui.chat.editing import MessageEditing
from anechat.tui.chat.inline_compare import InlineCompare
from anechat.tui.chat.search import ChatSearch
from anechat.tui.chat.slash import SlashCommands


class ChatFeatures(Screen):
    BINDINGS = [
        Binding("f3", "search_step(1)", "Next match", show=False),
        Binding("shift+f3", "search_step(-1)", "Previous match", show=False),
        Binding("tab", "complete_command", "Complete", show=False, priority=True),
    ]
    DEFAULT_CSS = """
    ChatFeatures .editing { border-left: thick $warning; }
    ChatFeatures .search-hit { background: $warning 15%; }
    ChatFeatures .search-current { background: $warning 35%; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.slash = SlashCommands(self)
        self.editing = MessageEditing(self)
        self.search = ChatSearch(self)
        self.inline_compare = InlineCompare(self)

    async def action_regenerate(self) -> None:
        await self.editing.regenerate()

    def action_edit_message(self) -> None:
        if not self._refuse_if_busy():
            self.editing.pick_previous()

    async def action_search(self) -> None:
        await self.search.open()

    def action_search_step(self, direction: int) -> None:
        if self.search.bar is None:
            raise SkipAction()
        self.search.step(direction)

    def action_complete_command(self) -> None:
        """Tab: complete a command name in the box, else move the focus (Tab's usual job)."""
        if self.focused is not self.chat_input or not self.slash.complete():
            self.focus_next()
