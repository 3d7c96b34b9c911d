"""The message box: Enter sends, Ctrl+J adds a line, Up/Down recall what was sent,
and bad input (empty, huge pastes) never breaks the app."""

from __future__ import annotations

import pytest
from textual import events
from textual.widgets import TextArea

from anechat.tui.widgets.chat_input import BIG_PASTE_CHARS, ChatInput
from anechat.tui.widgets.chat_pane import Notice, UserMessage
from tui_support import quiet_app

pytestmark = pytest.mark.anyio


class Recorder:
    """Collects what the input submits (the app's own handler still runs)."""

    def __init__(self, app) -> None:
        self.sent: list[str] = []
        original = app.screen.send

        async def send(text: str) -> bool:
            self.sent.append(text)
            return await original(text)

        app.screen.send = send


async def test_enter_sends_and_ctrl_j_inserts_a_newline():
    app = quiet_app()
    async with app.run_test() as pilot:
        box = app.screen.query_one(ChatInput)
        rec = Recorder(app)
        await pilot.press("h", "i", "ctrl+j", "y", "o")
        assert box.text == "hi\nyo"
        await pilot.press("enter")
        await pilot.pause()
        assert rec.sent == ["hi\nyo"]
        assert box.text == ""


async def test_up_and_down_walk_through_sent_messages_and_back_to_the_draft():
    app = quiet_app()
    async with app.run_test() as pilot:
        box = app.screen.query_one(ChatInput)
        for word in ("one", "two"):
            await pilot.press(*word, "enter")
        await pilot.press("d", "r")
        await pilot.press("up")
        assert box.text == "two"
        await pilot.press("up")
        assert box.text == "one"
        await pilot.press("up")
        assert box.text == "one"  # the oldest stays
        await pilot.press("down")
        assert box.text == "two"
        await pilot.press("down")
        assert box.text == "dr"  # the unfinished draft comes back


async def test_up_moves_the_cursor_inside_a_multi_line_message_first():
    app = quiet_app()
    async with app.run_test() as pilot:
        box = app.screen.query_one(ChatInput)
        await pilot.press("o", "l", "d", "enter")
        await pilot.press("a", "ctrl+j", "b")
        await pilot.press("up")
        assert box.text == "a\nb" and box.cursor_location[0] == 0
        await pilot.press("up")
        assert box.text == "old"


async def test_an_empty_message_is_not_sent_and_says_why():
    app = quiet_app()
    async with app.run_test() as pilot:
        await pilot.press("space", "ctrl+j", "enter")
        await pilot.pause()
        assert not app.screen.query(UserMessage)
        assert any("empty" in str(n.message) for n in app._notifications)


async def test_sending_without_a_model_explains_how_to_load_one():
    app = quiet_app()
    async with app.run_test() as pilot:
        await pilot.press("h", "i", "enter")
        await pilot.pause()
        notices = [n.text for n in app.screen.query(Notice)]
        assert any("no model is loaded" in t and "Ctrl+O" in t for t in notices)


async def test_a_megabyte_paste_is_held_as_one_marker_and_sent_in_full():
    app = quiet_app()
    async with app.run_test() as pilot:
        box = app.screen.query_one(ChatInput)
        rec = Recorder(app)
        big = "x" * (1024 * 1024)
        app.post_message(events.Paste(big))
        await pilot.pause()
        assert len(box.text) < 100 and "1,048,576 characters" in box.text
        await pilot.press("space", "o", "k", "enter")
        await pilot.pause()
        assert rec.sent == [big + " ok"]


async def test_a_small_paste_goes_into_the_box_as_text():
    app = quiet_app()
    async with app.run_test() as pilot:
        box = app.screen.query_one(ChatInput)
        app.post_message(events.Paste("line 1\nline 2"))
        await pilot.pause()
        assert box.text == "line 1\nline 2"
        assert BIG_PASTE_CHARS > len(box.text)
        assert isinstance(box, TextArea)
