"""Chat history in the app (issue 7): what you send is saved as you chat, and the
sessions list (Ctrl+L) opens, renames, deletes (after a y/n question), searches
and starts chats. Real Textual pilot, a real tiny model on MLX, a real SQLite file
in a temporary data folder."""

from __future__ import annotations

import pytest
from textual.widgets import OptionList, Static

from anechat.chat.controller import ChatController
from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.history import HistoryStore
from anechat.tui.screens.session_dialogs import ConfirmDialog, RenameDialog
from anechat.tui.screens.sessions import SessionsScreen
from anechat.tui.chat.answer_label import AnswerLabel
from anechat.tui.widgets.chat_pane import AssistantMessage, Notice, UserMessage
from tui_support import send_and_wait as chat, quiet_app, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here"),
]

SIZE = (120, 40)


@pytest.fixture
def db(tmp_path, monkeypatch):
    """The history database the app opens: <ANECHAT_DATA_DIR>/history.sqlite3 in a fresh folder."""
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "history.sqlite3"


def record_chat(db, title_message: str, answer: str, *, model: str = "", engine: str = "mlx",
                system_prompt: str = "", params: SamplingParams | None = None) -> str:
    """A session written the way a chat writes it: the user's message, then the answer streamed in."""
    with HistoryStore(db) as store:
        sid = store.new_session(model, engine, system_prompt, params or SamplingParams())
        store.add_user_message(sid, title_message)
        mid = store.begin_answer(sid)
        store.append_answer(mid, answer)
        store.finish_answer(mid, status="complete")
    return sid


async def ready(pilot) -> None:
    app = pilot.app

    def settled() -> bool:
        """the history store to open and any model to finish loading"""
        return app.history_ready.is_set() and not app.screen.loading_model

    await wait_for(pilot, settled, limit_s=120)


async def open_sessions(pilot) -> SessionsScreen:
    await pilot.press("ctrl+l")
    screen = pilot.app.screen
    assert isinstance(screen, SessionsScreen)
    await wait_for(pilot, lambda: screen.listed > 0)
    return screen


async def listed_as(pilot, screen: SessionsScreen, titles: list[str]) -> None:
    def shown() -> bool:
        return [s.title for s in screen.shown] == titles

    shown.__doc__ = f"the sessions list to show {titles}"
    await wait_for(pilot, shown, limit_s=20)


def rows(screen: SessionsScreen) -> list[str]:
    options = screen.query_one(OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


async def test_what_you_send_is_saved_and_listed_with_its_model_and_engine(db, tiny_model_dir):
    app = quiet_app(model=str(tiny_model_dir), engine="mlx", controller=ChatController(params=SamplingParams(max_tokens=6)))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await chat(pilot, "Hello there, tiny model")
        await chat(pilot, "And a second question")
        sessions = await open_sessions(pilot)
        [summary] = sessions.shown
        assert summary.title == "Hello there, tiny model" and summary.message_count == 4
        assert (summary.model, summary.engine) == (str(tiny_model_dir), "mlx")
        [row] = rows(sessions)
        assert "Hello there, tiny model  (open now)" in row and "tiny-llama · mlx · 4 messages" in row
        conversation = [(m.role, m.content) for m in app.controller.messages]
    with HistoryStore(db) as store:  # on disk, exactly as the chat had it
        saved = store.get_session(summary.id)
        assert [(m.role, m.content) for m in saved.messages] == conversation
        assert [m.status for m in saved.messages] == ["complete"] * 4


async def test_opening_a_session_restores_its_messages_model_and_settings_and_the_chat_goes_on(db, tiny_model_dir):
    params = SamplingParams(temperature=0.5, top_k=7, seed=11, max_tokens=6)
    sid = record_chat(db, "What is the capital of France?", "Paris is the **capital** of France.",
                      model=str(tiny_model_dir), system_prompt="Answer in one line.", params=params)
    record_chat(db, "A newer chat about bread", "Bread needs flour.")  # listed first (most recent)
    app = quiet_app()  # nothing loaded at start
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        sessions = await open_sessions(pilot)
        assert [s.title for s in sessions.shown] == ["A newer chat about bread", "What is the capital of France?"]
        await pilot.press("down", "enter")

        def opened() -> bool:
            """the session's model to be loaded"""
            return app.controller.session is not None and not app.screen.loading_model

        await wait_for(pilot, opened, limit_s=120)
        main = app.screen
        assert [w.text for w in main.query(UserMessage)] == ["What is the capital of France?"]
        assert main.query_one(AssistantMessage).body.source == "Paris is the **capital** of France."
        assert main.query_one(AssistantMessage).query_one(AnswerLabel).text == f"mlx · {tiny_model_dir}"  # who wrote it
        assert any(n.text.startswith("opened “What is the capital of France?” · 2 messages · tiny-llama on mlx")
                   for n in main.query(Notice))
        ctrl = app.controller
        assert ctrl.session_id == sid and ctrl.state.system_prompt == "Answer in one line."
        assert ctrl.state.params == params
        assert (ctrl.loaded.path, ctrl.loaded.engine) == (tiny_model_dir, "mlx")

        await chat(pilot, "And of Italy?")
        first = ctrl.last_stats
        assert first.cached_tokens == 0 and first.prompt_tokens > 20  # the whole restored chat was prefilled once
        await chat(pilot, "Thanks")
        assert ctrl.last_stats.cached_tokens > first.prompt_tokens // 2  # then the cache carries it
    with HistoryStore(db) as store:
        saved = store.get_session(sid)
        assert [m.content for m in saved.messages if m.role == "user"] == ["What is the capital of France?", "And of Italy?", "Thanks"]
        assert len(store.list_sessions()) == 2  # the chat went on in the same session


async def test_search_rename_delete_with_confirmation_and_new_chat_from_the_list(db):
    record_chat(db, "Plans for a trip to Lyon", "Take the train.")
    record_chat(db, "How do I bake bread?", "Start a sourdough starter a week ahead.")
    record_chat(db, "Debugging python code", "Read the traceback from the bottom.")
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        sessions = await open_sessions(pilot)
        assert len(sessions.shown) == 3

        await pilot.press(*"SOURDOUGH")  # searches answers too, ignoring case
        await listed_as(pilot, sessions, ["How do I bake bread?"])
        detail = str(sessions.query_one("#sessions-detail", Static).render())
        assert "assistant: Start a sourdough starter a week ahead." in detail

        await pilot.press("f2")
        assert isinstance(app.screen, RenameDialog)
        await pilot.press("ctrl+u", *"Bread notes", "enter")
        await listed_as(pilot, sessions, ["Bread notes"])
        assert "Bread notes" in rows(sessions)[0]

        await pilot.press("ctrl+d")
        assert isinstance(app.screen, ConfirmDialog)
        assert "Delete “Bread notes” and its 2 messages? This cannot be undone." in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("n")  # keeps it
        assert app.screen is sessions and len(sessions.shown) == 1

        await pilot.press("ctrl+u")  # clear the search: all three again, newest first
        await listed_as(pilot, sessions, ["Debugging python code", "Bread notes", "Plans for a trip to Lyon"])
        await pilot.press("down", "ctrl+d", "y")
        await listed_as(pilot, sessions, ["Debugging python code", "Plans for a trip to Lyon"])

        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.screen is not sessions and app.controller.session_id is None
    with HistoryStore(db) as store:
        assert sorted(s.title for s in store.list_sessions()) == ["Debugging python code", "Plans for a trip to Lyon"]


async def test_an_empty_title_is_refused_and_deleting_the_open_chat_starts_a_new_one(db):
    sid = record_chat(db, "Keep this title", "ok")
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await open_sessions(pilot)
        await pilot.press("enter")  # the session has no model recorded: only its messages come back

        def opened() -> bool:
            """the session to show"""
            return app.controller.session_id == sid and app.screen.query(UserMessage)

        await wait_for(pilot, opened)
        assert [m.content for m in app.controller.messages] == ["Keep this title", "ok"]

        sessions = await open_sessions(pilot)
        await pilot.press("f2", "ctrl+u", "enter")  # an empty title
        await pilot.pause()
        assert any("not renamed: a session title cannot be empty" in str(n.message) for n in app._notifications)
        assert sessions.shown[0].title == "Keep this title"

        await pilot.press("ctrl+d")
        assert "It is the chat open now" in str(app.screen.query_one("#confirm-question").render())
        await pilot.press("y")
        await listed_as(pilot, sessions, [])
        assert "no saved chats yet" in str(sessions.query_one("#sessions-detail").render())
        await pilot.press("escape")
        await pilot.pause()
        assert app.controller.session_id is None and app.controller.messages == []
        assert not app.screen.query(UserMessage)
        assert any("the chat that was open was deleted" in n.text for n in app.screen.query(Notice))


async def test_the_sessions_list_is_in_the_command_palette_with_its_key():
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        titles = {c.title: c.help for c in app.get_system_commands(app.screen)}
        assert "Sessions (^l)" in titles and "search" in titles["Sessions (^l)"]  # with its key
        await ready(pilot)
        await pilot.press("ctrl+l")
        assert isinstance(app.screen, SessionsScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, SessionsScreen)
