"""An answer ends on screen as soon as its text is all there, whichever of the app's
tasks notices first: the drain timer, or the worker when the engine thread's report
reaches the event loop. Real Textual pilot, real tiny model on MLX."""

from __future__ import annotations

import asyncio

import pytest

from anechat.chat.controller import ChatController
from anechat.chat.engine_thread import EngineThread
from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.tui.chat.turn import run_turn
from tui_support import loaded, quiet_app, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here"),
]


class LateReports(EngineThread):
    """The real engine thread, whose report that a turn has ended reaches the UI only when
    the test says so: as when the event loop was busy (a long garbage collection of a big
    heap) at the moment the engine finished, and the drain timer saw the end first."""

    def __init__(self) -> None:
        super().__init__()
        self.reported = asyncio.Event()

    async def run(self, fn, *args, **kwargs):
        result = await super().run(fn, *args, **kwargs)
        if fn is run_turn:
            await self.reported.wait()
        return result


async def test_an_answer_ends_when_its_text_is_in_even_before_the_engine_threads_report_arrives(tiny_model_dir):
    app = quiet_app(
        model=str(tiny_model_dir), engine="mlx", history=False,
        controller=ChatController(params=SamplingParams(max_tokens=4)),
    )
    app.engine_thread = late = LateReports()
    async with app.run_test(size=(100, 30)) as pilot:
        await loaded(pilot)
        turns = app.screen.turn_view
        assert await app.screen.send("Hello")

        def ended() -> bool:
            """the drain timer to end the answer (the engine's report is held back)"""
            return turns.turns_finished == 1

        await wait_for(pilot, ended, limit_s=60)
        assert not turns.streaming and app.screen.busy_reason() is None
        assert "tok/s" in str(app.screen.pane.last_answer().query_one(".answer-meta").render())
        late.reported.set()  # the late report changes nothing: the answer ended once
        await pilot.pause()
        assert turns.turns_finished == 1 and turns.turns_started == 1
        await wait_for(pilot, lambda: not app.screen.query("AssistantMessage.streaming"))
        # and the chat goes on
        late.reported.clear()
        assert await app.screen.send("Again")
        await wait_for(pilot, lambda: turns.turns_finished == 2, limit_s=60)
        late.reported.set()
