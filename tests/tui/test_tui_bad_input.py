"""Bad input in the app (issue 7): each case gets a clear message, nothing raw reaches
the terminal, and the app keeps running and answering. Real Textual pilot, real
tiny models on MLX, a real SQLite history in a temporary data folder.

"What reaches the terminal" is read from the screen's full frame: the text of
every segment Textual would write, before its own styling codes are added.
"""

from __future__ import annotations

import re
import shutil

import pytest
from textual import events

from anechat.chat.controller import ChatController
from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.history import HistoryStore
from anechat.tui.widgets.chat_pane import Notice, UserMessage
from tinymodel import build_tiny_llama
from tui_support import send_and_wait as chat, models_home, quiet_app, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here"),
]

SIZE = (120, 40)
#: what a terminal acts on: C0 controls (ESC, BEL, CR...), DEL, C1 controls, bidi overrides
TERMINAL_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def screen_rows(app) -> list[str]:
    """The text of the whole frame as it would be written to the terminal, row by row."""
    frame = app.screen._compositor.render_full_update()
    return ["".join(segment.text for strip in row for segment in strip) for row in frame.strips]


def raw_controls(app) -> list[str]:
    """Rows of the frame holding a character the terminal would act on (none, ever)."""
    return [row for row in screen_rows(app) if TERMINAL_CONTROLS.search(row)]


def notifications(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


@pytest.fixture
def db(tmp_path, monkeypatch):
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data" / "history.sqlite3"


@pytest.fixture(scope="module")
def escape_model(tmp_path_factory):
    """A tiny model whose every answer token is the terminal escape character."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "escape-model", always_text="\x1b")


def chat_app(model_dir, max_tokens: int = 6, **kwargs):
    controller = ChatController(params=SamplingParams(max_tokens=max_tokens))
    return quiet_app(model=str(model_dir), engine="mlx", controller=controller, **kwargs)


async def ready(pilot) -> None:
    app = pilot.app

    def settled() -> bool:
        """the history store to open and the model to load"""
        return app.history_ready.is_set() and not app.screen.loading_model and app.controller.session is not None

    await wait_for(pilot, settled, limit_s=120)


def answer_note(app) -> str:
    return str(app.screen.pane.last_answer().query_one(".answer-meta").render())


async def test_an_empty_message_sends_nothing_saves_nothing_and_says_why(db, tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press("space", "ctrl+j", "space", "enter")
        await pilot.pause()
        assert not app.screen.query(UserMessage) and app.screen.turn_view.turns_started == 0
        assert "the message is empty: type something first" in notifications(app)
        assert app.controller.messages == []
    with HistoryStore(db) as store:
        assert store.list_sessions() == []


async def test_a_megabyte_paste_is_refused_by_the_model_with_the_context_error_and_the_app_goes_on(db, tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        screen = app.screen
        box = screen.query_one("#input")
        app.post_message(events.Paste("x" * (1024 * 1024)))
        await wait_for(pilot, lambda: "[pasted text #1 · 1,048,576 characters]" in box.text)
        box.submit()  # what Enter does
        await wait_for(pilot, lambda: screen.turn_view.turns_finished == 1)  # refused, not hung
        note = answer_note(app)
        assert "the conversation needs 1048" in note and "context holds 512" in note
        shown = screen.query_one(UserMessage)
        assert len(shown.text) == 1024 * 1024  # sent whole...
        assert "1,048,576 characters in all; the rest is sent but not shown" in str(shown.render())  # ...shown in part
        assert app.controller.messages == []  # not part of the conversation
        await chat(pilot, "Hello again")  # still answering
        assert [m.role for m in app.controller.messages] == ["user", "assistant"]
    with HistoryStore(db) as store:
        [session] = store.list_sessions()
        statuses = [(m.role, len(m.content), m.status) for m in store.get_session(session.id).messages]
        assert statuses[:2] == [("user", 1024 * 1024, "complete"), ("assistant", 0, "error")]  # kept, marked failed
        assert [s for _r, _n, s in statuses[2:]] == ["complete", "complete"]


async def test_emoji_and_right_to_left_text_are_shown_sent_and_saved_as_they_are(db, tiny_model_dir):
    text = "مرحبا 🙂 שלום — café 東京 🎉"
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await chat(pilot, text)
        assert any(text in row for row in screen_rows(app))
        assert app.controller.messages[0].content == text
        assert app.controller.last_stats.finish_reason in ("stop", "length")
    with HistoryStore(db) as store:
        [session] = store.list_sessions()
        assert session.title == text and store.get_session(session.id).messages[0].content == text


async def test_escape_sequences_in_a_prompt_are_sent_as_typed_but_shown_as_visible_symbols(db, tiny_model_dir):
    prompt = "\x1b[31mred\x1b[0m \x07bell \x1b]52;c;aGk=\x07 \u202eevil\u202c done"
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await chat(pilot, prompt)
        assert raw_controls(app) == []
        assert any("␛[31mred␛[0m ␇bell ␛]52;c;aGk=␇ \\u202eevil\\u202c done" in row for row in screen_rows(app))
        assert app.controller.messages[0].content == prompt  # the model got exactly what was typed
    with HistoryStore(db) as store:
        [session] = store.list_sessions()
        assert store.get_session(session.id).messages[0].content == prompt


async def test_a_model_that_writes_escape_characters_never_reaches_the_terminal_with_them(db, escape_model):
    app = chat_app(escape_model, max_tokens=5)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await chat(pilot, "Say something")
        assert app.controller.messages[-1].content == "\x1b" * 5  # the conversation keeps the exact text
        assert app.controller.last_stats.generation_tokens == 5
        assert raw_controls(app) == []

        await pilot.press("ctrl+l", "enter")  # the same chat opened again from the history
        await wait_for(pilot, lambda: any(n.text.startswith("opened") for n in app.screen.query(Notice)))
        assert raw_controls(app) == []
    with HistoryStore(db) as store:
        [session] = store.list_sessions()
        assert store.get_session(session.id).messages[-1].content == "\x1b" * 5


def _broken_models(tmp_path, good):
    """Three folders that are not usable models: no weights, truncated weights, a meta.yaml with wrong types."""
    no_weights = tmp_path / "src" / "no-weights"
    no_weights.mkdir(parents=True)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(good / name, no_weights / name)
    truncated = tmp_path / "src" / "truncated"
    shutil.copytree(good, truncated)
    weights = truncated / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    bad_meta = tmp_path / "src" / "bad-meta"
    bad_meta.mkdir()
    (bad_meta / "meta.yaml").write_text(
        "model_info:\n  parameters:\n    context_length: lots\n    batch_size: 64\n    model_prefix: llama\n"
    )
    return no_weights, truncated, bad_meta


async def test_broken_model_folders_say_what_is_wrong_and_the_app_keeps_working(db, tmp_path, monkeypatch, tiny_model_dir):
    no_weights, truncated, bad_meta = _broken_models(tmp_path, tiny_model_dir)
    models_home(tmp_path, monkeypatch, tiny_model_dir, no_weights, truncated, bad_meta)
    app = quiet_app(model=str(truncated), engine="mlx")  # started on a broken folder
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.history_ready.is_set() and not app.screen.loading_model)
        error = app.screen.query(Notice).last()
        assert error.kind == "error" and "could not load" in error.text and "model.safetensors is truncated" in error.text

        await pilot.press("ctrl+o")
        picker = app.screen
        await wait_for(pilot, lambda: picker.entries, limit_s=30)
        expected = {
            "no-weights": "no *.safetensors weights",
            "truncated": "model.safetensors is truncated",
            "bad-meta": "meta.yaml: model_info.parameters.context_length must be a positive integer >= 2, got 'lots'",
        }
        for name, reason in expected.items():
            await pilot.press("ctrl+u", *name)  # filter to it
            assert picker.shown[0].name == name
            await pilot.press("enter")
            assert app.screen is picker  # not loaded; the picker stays open
            assert any(m.startswith(f"{name} cannot run as it is: ") and reason in m for m in notifications(app))

        await pilot.press("ctrl+u", *"tiny-llama", "enter")
        await ready(pilot)
        assert app.controller.loaded.name == "tiny-llama"
        await chat(pilot, "Still here?")
        assert app.controller.last_stats.finish_reason in ("stop", "length")


async def test_an_unwritable_data_folder_is_reported_and_chats_are_kept_in_memory(tmp_path, monkeypatch, tiny_model_dir):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(blocker / "data"))  # cannot be created
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        assert app.controller.loaded.name == "tiny-llama"
        assert not [n for n in app.screen.query(Notice) if n.kind == "error"]  # the model loaded all the same
        [warning] = [m for m in notifications(app) if "data folder" in m]
        assert f"cannot create the data folder {blocker / 'data'}" in warning and "memory only" in warning
        assert any(n.kind == "warning" and "memory only" in n.text for n in app.screen.query(Notice))
        await chat(pilot, "Does chatting still work?")
        assert [m.role for m in app.controller.messages] == ["user", "assistant"]
        await pilot.press("ctrl+l")
        sessions = app.screen
        await wait_for(pilot, lambda: sessions.listed > 0)
        assert [s.title for s in sessions.shown] == ["Does chatting still work?"]
        assert "in memory only" in str(sessions.query_one("#sessions-detail").render())


async def test_a_damaged_history_database_is_moved_aside_and_the_app_says_where(db):
    db.parent.mkdir(parents=True)
    db.write_bytes(b"this is not a database" * 100)
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        await wait_for(pilot, lambda: app.history_ready.is_set())
        await pilot.pause()
        [warning] = [m for m in notifications(app) if "damaged" in m]
        [moved] = list(db.parent.glob("history.corrupt-*.sqlite3"))
        assert str(moved) in warning and moved.read_bytes() == b"this is not a database" * 100
        assert app.controller.history.persistent


async def test_a_broken_config_file_is_reported_with_its_line_and_the_app_starts(tmp_path, monkeypatch):
    config = tmp_path / "config" / "config.toml"
    config.parent.mkdir()
    config.write_text('engine = "mlx"\ntheme = \n')
    monkeypatch.setenv("ANECHAT_CONFIG_DIR", str(config.parent))
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        [warning] = [m for m in notifications(app) if "config.toml" in m]
        assert str(config) in warning and "line 2" in warning and "using defaults" in warning
        assert any(n.kind == "warning" and "line 2" in n.text for n in app.screen.query(Notice))
        await pilot.press("ctrl+s")  # the app works: a dialog opens
        assert app.screen.__class__.__name__ == "ParamsScreen"
