"""The app as rank 0 of a two-rank session, driven by its pilot in a process of its own
(``mx.distributed`` joins one ring per process). Run by tests/tui/test_tui_ranks.py:

    python tests/ranks_app.py MODEL_DIR

Prints one JSON object: the status line, the memory panel, the answer and its tokens.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from anechat.chat.controller import ChatController  # noqa: E402
from anechat.engines.base import SamplingParams  # noqa: E402
from anechat.engines.mlx.distributed.hosts import plan_from  # noqa: E402
from anechat.engines.registry import use_ranks  # noqa: E402
from tui_support import loaded, quiet_app, send_and_wait, wait_for  # noqa: E402


async def drive(model: str) -> dict:
    from anechat.tui.widgets.memory_gauges import MemoryGauges
    from anechat.tui.widgets.status_line import StatusLine

    use_ranks(plan_from("127.0.0.1,127.0.0.1", None, "pipeline"))
    controller = ChatController(params=SamplingParams(max_tokens=16))
    app = quiet_app(model=model, engine="mlx", controller=controller, gauges=None)
    async with app.run_test(size=(140, 40)) as pilot:
        await loaded(pilot)
        await send_and_wait(pilot, "hello there")
        panel = app.screen.query_one(MemoryGauges)

        def ranks_shown() -> bool:
            """the memory panel to show both ranks"""
            return "rank 1" in str(panel.render())

        await wait_for(pilot, ranks_shown, limit_s=30)
        out = {
            "status": str(app.screen.query_one(StatusLine).render()),
            "memory": str(panel.render()),
            "answer": controller.messages[-1].content,
            "tokens": controller.session.last_stats.generation_tokens,
        }
        engine = controller.engine
    engine.shutdown()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(drive(sys.argv[1]))))
