"""Asking again from an earlier message: regenerate the last answer (F5, /regen) or
edit a sent message and resend it (F2 picks it, Enter resends).

The conversation is cut before that message (on the engine thread, through
:meth:`ChatController.truncate_before`), what the pane shows from it on goes, and the
message is sent again: the engine reuses its KV cache up to the cut (longest common
token prefix), so only the new text is prefilled.
"""

from __future__ import annotations

from anechat.tui.widgets.chat_pane import UserMessage


class MessageEditing:
    """The chat screen's regenerate and edit-and-resend."""

    def __init__(self, chat) -> None:
        self.chat = chat
        self.target: tuple[UserMessage, int] | None = None  # the message being edited, its index

    @property
    def active(self) -> bool:
        return self.target is not None

    def sent_messages(self) -> list[tuple[UserMessage, int]]:
        """The pane's messages that are in the conversation, with their index there (oldest
        first). Paired from the end by text: a message whose answer failed is in the pane only."""
        messages = self.chat.controller.messages
        users = [i for i, m in enumerate(messages) if m.role == "user"]
        pairs = []
        for widget in reversed(list(self.chat.pane.query(UserMessage))):
            if users and messages[users[-1]].content == widget.text:
                pairs.append((widget, users.pop()))
        return pairs[::-1]

    def _can_start(self) -> bool:
        chat = self.chat
        busy = chat.busy_reason()
        if busy:
            chat.notify(busy, severity="warning")
            return False
        if not chat.has_model():
            chat.notify("no model is loaded: Ctrl+O picks one", severity="warning")
            return False
        return True

    async def regenerate(self) -> bool:
        """Replace the last answer by a new one to the same message."""
        if not self._can_start():
            return False
        sent = self.sent_messages()
        if not sent:
            self.chat.notify("nothing to regenerate yet: send a message first", severity="warning")
            return False
        widget, index = sent[-1]
        return await self._resend(widget, index, widget.text)

    def pick_previous(self) -> bool:
        """Put the last sent message (then, pressed again, the one before) in the box to edit."""
        sent = self.sent_messages()
        if not sent:
            self.chat.notify("no sent message to edit yet", severity="warning")
            return False
        at = len(sent) - 1
        if self.target is not None and self.target in sent:
            at = max(0, sent.index(self.target) - 1)
        self._select(*sent[at], count=len(sent), position=at + 1)
        return True

    def _select(self, widget: UserMessage, index: int, *, count: int, position: int) -> None:
        if self.target is not None:
            self.target[0].remove_class("editing")
        self.target = (widget, index)
        widget.add_class("editing")
        box = self.chat.chat_input
        box.load_text(widget.text)
        box.move_cursor(box.document.end)
        box.focus()
        self.chat.pane.scroll_to_widget(widget, animate=False)
        self.chat.status.set_state(f"editing message {position} of {count} · Enter resends from there · Esc cancels")

    def cancel(self) -> bool:
        """Leave editing (the box keeps its text); False when not editing."""
        if self.target is None:
            return False
        self.target[0].remove_class("editing")
        self.target = None
        self.chat.chat_input.clear()
        self.chat.show_model()
        return True

    async def resend(self, text: str) -> bool:
        """Send ``text`` in place of the message being edited."""
        widget, index = self.target
        if not self._can_start():
            return False
        if not text.strip():
            self.chat.notify("the message is empty: type something first", severity="warning")
            return False
        return await self._resend(widget, index, text)

    async def _resend(self, widget: UserMessage, index: int, text: str) -> bool:
        chat = self.chat
        if self.target is not None:
            self.target[0].remove_class("editing")
            self.target = None
        await chat.app.engine_thread.run(chat.controller.truncate_before, index)
        pane = chat.pane
        children = list(pane.children)
        await pane.remove_children(children[children.index(widget):])
        pane.anchor()
        return await chat.send(text)
