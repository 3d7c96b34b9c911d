"""Chatting in the app on the Core AI engine: a tiny llama converted to a ``.aimodel``
folder loads with ``engine="coreai"``, the status line says what runs it, and an answer
streams in through Apple's runtime (on Linux: its CPU build)."""

from __future__ import annotations

import sys

import pytest

pytest.importorskip("coreai.runtime")
pytest.importorskip("coreai_torch")


from anechat.chat.controller import ChatController  # noqa: E402
from anechat.engines.base import SamplingParams  # noqa: E402
from anechat.tui.widgets.chat_pane import AssistantMessage  # noqa: E402
from anechat.tui.widgets.status_line import StatusLine  # noqa: E402
from tui_support import send_and_wait, quiet_app, wait_for  # noqa: E402

pytestmark = pytest.mark.anyio


async def test_a_converted_aimodel_folder_loads_on_coreai_and_answers(tiny_coreai_dir):
    folder = tiny_coreai_dir
    controller = ChatController(params=SamplingParams(max_tokens=5))
    app = quiet_app(model=str(folder), engine="coreai", controller=controller)
    async with app.run_test(size=(120, 40)) as pilot:

        def ready() -> bool:
            """the Core AI model to load"""
            return app.controller.session is not None and not app.screen.loading_model

        await wait_for(pilot, ready, limit_s=120)
        assert app.controller.loaded.engine == "coreai"
        status = str(app.screen.query_one(StatusLine).render())
        if sys.platform != "darwin":
            assert "coreai · Apple Core AI runtime on CPU" in status  # honest about what runs
        await send_and_wait(pilot, "Hello there")
        stats = app.controller.last_stats
        assert stats.finish_reason in ("stop", "length") and stats.generation_tokens >= 1
        assert [m.role for m in app.controller.messages] == ["user", "assistant"]
        assert len(app.screen.query(AssistantMessage)) == 1  # the chat pane shows the answer
