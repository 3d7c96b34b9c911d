"""What the chat does with the sessions list's answer: open a saved session (its
messages in the chat pane, its system prompt and parameters in the controller, its
model loaded through the chat's usual loading path), start a new chat, or start over
when the chat that was open got deleted.

The engine's cache is not touched here: the next turn prefills the restored
conversation once (ChatController.open_session), and later turns reuse it.
"""

from __future__ import annotations

from typing import Protocol

from anechat.chat.controller import ChatController
from anechat.engines.errors import AnechatError
from anechat.history import SessionRecord
from anechat.safe_text import sanitize_for_terminal

from anechat.tui.chat.answer_label import AnswerLabel, answer_label
from anechat.tui.same_model import is_loaded_model
from anechat.tui.widgets.chat_pane import AssistantMessage, ChatPane, UserMessage
from anechat.tui.widgets.speed_panel import SpeedPanel
from anechat.tui.screens.sessions import UNTITLED, SessionsResult, model_label

#: messages drawn when a session opens (all of them are in the conversation)
MAX_SHOWN_MESSAGES = 60

PARTIAL_NOTE = "partial: this answer was stopped or cut off"
ERROR_NOTE = "error: this answer failed"


class Chat(Protocol):
    """What the opener uses of the chat screen."""

    app: object
    pane: ChatPane
    speed: SpeedPanel

    @property
    def controller(self) -> ChatController: ...
    def busy_reason(self) -> str | None: ...
    def notify(self, message: str, *, severity: str = "information") -> None: ...
    def show_model(self) -> None: ...
    def load_model(self, ref: str, engine: str) -> None: ...
    async def action_new_chat(self) -> None: ...


class SessionOpener:
    def __init__(self, chat: Chat) -> None:
        self.chat = chat

    async def apply(self, result: SessionsResult | None) -> None:
        """The sessions list closed with ``result`` (None: closed without a choice)."""
        if result is None:
            return
        chat = self.chat
        open_deleted = chat.controller.session_id in result.deleted
        if result.action == "open" and result.session_id:
            await self.open(result.session_id)
        elif result.action == "new" or open_deleted:
            await chat.action_new_chat()
            if open_deleted and result.action != "new":
                await chat.pane.add_notice("the chat that was open was deleted: this is a new chat", "info")

    async def open(self, session_id: str) -> bool:
        """Show ``session_id`` in the chat and load its model; False (with a message) when it cannot."""
        chat = self.chat
        busy = chat.busy_reason()
        if busy:
            chat.notify(busy, severity="warning")
            return False
        try:
            record = await chat.app.engine_thread.run(_restore, chat.controller, session_id)
        except AnechatError as exc:
            await chat.pane.add_notice(f"could not open the session: {exc}", "error")
            return False
        await show_record(chat.pane, record)
        chat.speed.show_state("")
        chat.show_model()
        self._load_its_model(record)
        return True

    def _load_its_model(self, record: SessionRecord) -> None:
        chat = self.chat
        if not record.model:
            chat.notify("no model was recorded for this session: the loaded one answers")
            return
        engine = record.engine or chat.app.engine_name
        loaded = chat.controller.loaded
        if loaded is not None and loaded.engine == engine and is_loaded_model(loaded, record.model):
            return
        chat.load_model(record.model, engine)  # the chat's own path: status, progress, errors


def _restore(controller: ChatController, session_id: str) -> SessionRecord:
    """On the engine thread: the controller takes the session's conversation and settings."""
    controller.open_session(session_id)
    return controller.history.get_session(controller.session_id)


async def show_record(pane: ChatPane, record: SessionRecord) -> None:
    """Replace the pane's content by the session: a heading notice, then its messages
    (the last MAX_SHOWN_MESSAGES), answers rendered once as Markdown."""
    await pane.clear()
    chat = [m for m in record.messages if m.role in ("user", "assistant")]
    n = len(chat)
    where = f"{model_label(record.model)} on {record.engine}" if record.model else "no model recorded"
    await pane.add_notice(
        f"opened “{record.title or UNTITLED}” · {n} message{'s' if n != 1 else ''} · {where}", "info"
    )
    hidden = n - MAX_SHOWN_MESSAGES
    if hidden > 0:
        await pane.add_notice(f"{hidden} earlier messages are not shown (the model still sees them)", "info")
    widgets, answers = [], []
    for message in chat[-MAX_SHOWN_MESSAGES:]:
        if message.role == "user":
            widgets.append(UserMessage(message.content))
            continue
        if message.status == "error" and not message.content:
            continue  # nothing was said; the conversation leaves it out too
        answer = AssistantMessage()
        widgets.append(answer)
        answers.append((answer, message))
    if widgets:
        await pane.mount_all(widgets)
    for answer, message in answers:
        note, kind = {"partial": (PARTIAL_NOTE, "warning"), "error": (ERROR_NOTE, "error")}.get(message.status, ("", ""))
        await answer.finish(sanitize_for_terminal(message.content), note, kind)
        if message.engine or message.model:  # which engine and model wrote it, as for a new answer
            await answer.mount(AnswerLabel(answer_label(message.engine or "", message.model or "")), before=answer.body)
    pane.scroll_end(animate=False)
    pane.anchor()
