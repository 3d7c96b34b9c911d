"""Model output is shown safely (no terminal control characters) and code blocks can be copied."""

from __future__ import annotations

import pytest

from anechat.engines.base import Message
from anechat.tui.screens.code_blocks import CodeBlockPicker, code_blocks
from anechat.safe_text import sanitize_for_terminal
from anechat.tui.widgets.chat_pane import ChatPane
from tui_support import quiet_app

pytestmark = pytest.mark.anyio

TWO_BLOCKS = "Here:\n\n```python\nprint('a')\n```\n\nand\n\n~~~\nls -l\n~~~\n"


def test_code_blocks_finds_complete_fenced_blocks_in_order():
    assert code_blocks(TWO_BLOCKS) == [("python", "print('a')"), ("", "ls -l")]
    assert code_blocks("```\nunfinished") == []


async def test_an_answer_with_escape_sequences_renders_without_them():
    app = quiet_app()
    async with app.run_test() as pilot:
        pane = app.screen.query_one(ChatPane)
        answer = await pane.add_assistant()
        answer.write(sanitize_for_terminal("**bold**\x1b]52;c;ZXZpbA==\x07 and \x1b[31mred"))
        await answer.finish(None)
        await pilot.pause()
        assert "\x1b" not in answer.body.source and "bold" in answer.body.source


async def test_copy_code_asks_which_block_when_there_are_several():
    app = quiet_app()
    async with app.run_test() as pilot:
        app.controller.state.messages += [Message("user", "show me"), Message("assistant", TWO_BLOCKS)]
        await pilot.press("ctrl+y")
        assert isinstance(app.screen, CodeBlockPicker)
        await pilot.press("down", "enter")
        assert app.clipboard == "ls -l"
        app.controller.state.messages[-1] = Message("assistant", "```sh\necho hi\n```")
        await pilot.press("ctrl+y")
        assert app.clipboard == "echo hi"  # one block: copied at once
