"""What the main screen does with the sessions list's answer: open a saved session
(its messages in the chat pane, its system prompt and parameters in the controller,
its model loaded through the screen's usual loading path), start a new chat, or
start over when the chat that was open got deleted.

The engine's cache is not touched here: the next turn prefills the restored
conversation once (ChatController.open_session), and later turns reuse it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from anechat.chat.controller import ChatController
from anechat.engines.errors import AnechatError
from anechat.history import SessionRecord
from anechat.safe_text import sanitize_for_terminal

from anechat.tui.widgets.chat_pane import AssistantMessage, ChatPane, UserMessage
from anechat.tui.screens.sessions import UNTITLED, SessionsResult, model_label

if TYPE_CHECKING:
    from anechat.tui.chat.screen import MainScreen

#: messages drawn when a session opens (all of them are in the conversation)
MAX_SHOWN_MESSAGES = 60

PARTIAL_NOTE = "partial: this answer was stopped or cut off"
ERROR_NOTE = "error: this answer failed"


async def apply_sessions_result(screen: "MainScreen", result: SessionsResult | None) -> None:
    if result is None:
        return
    open_deleted = screen.controller.session_id in result.deleted
    if result.action == "open" and result.session_id:
        await open_session(screen, result.session_id)
    elif result.action == "new" or open_deleted:
        await screen.action_new_chat()
        if open_deleted and result.action != "new":
            await screen.pane.add_notice("the chat that was open was deleted: this is a new chat", "info")


def _restore(controller: ChatController, session_id: str) -> SessionRecord:
    """On the engine thread: the controller takes the session's conversation and settings."""
    controller.open_session(session_id)
    return controller.history.get_session(controller.session_id)


async def open_session(screen: "MainScreen", session_id: str) -> bool:
    """Show ``session_id`` in the chat and load its model; False (with a message) when it cannot."""
    if screen.turn is not None:
        screen.notify("an answer is streaming: Esc stops it first", severity="warning")
        return False
    if screen.loading:
        screen.notify("a model is loading: open the session when it is done", severity="warning")
        return False
    controller = screen.controller
    try:
        record = await screen.app.engine_thread.run(_restore, controller, session_id)
    except AnechatError as exc:
        await screen.pane.add_notice(f"could not open the session: {exc}", "error")
        return False
    await show_record(screen.pane, record)
    screen.speed.show_state("")
    screen._show_model()
    _load_its_model(screen, record)
    return True


def _load_its_model(screen: "MainScreen", record: SessionRecord) -> None:
    if not record.model:
        screen.notify("no model was recorded for this session: the loaded one answers")
        return
    engine = record.engine or screen.app.engine_name
    loaded = screen.controller.loaded
    if loaded is not None and loaded.engine == engine and _same_model(loaded, record.model):
        return
    screen.load_model(record.model, engine)  # the screen's own path: status, progress, errors


def _same_model(loaded, model: str) -> bool:
    if model in (loaded.ref, loaded.name):
        return True
    try:
        return Path(model).expanduser().resolve() == Path(loaded.path).resolve()
    except OSError:
        return False


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
    pane.scroll_end(animate=False)
    pane.anchor()
