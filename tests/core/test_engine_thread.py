"""The engine thread: every engine call runs there, and the process exits cleanly
after the app used MLX from it (MLX streams left in a finished thread abort the
interpreter at exit: "terminate called without an active exception")."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from anechat.engines.registry import availability
from anechat.chat.engine_thread import EngineThread

pytestmark = pytest.mark.anyio

TWO_APPS_THEN_EXIT = """
import asyncio, sys
from anechat.chat.controller import ChatController
from anechat.engines.base import SamplingParams
from anechat.chat.engine_thread import EngineThread

def answer(controller):
    for _ in controller.send("hi"):
        pass
    return controller.last_stats.generation_tokens

async def main():
    for _ in range(2):  # a second app in the same process still works after the first closed
        thread, controller = EngineThread(), ChatController(params=SamplingParams(max_tokens=3))
        await thread.run(controller.load, sys.argv[1], "mlx")
        print(await thread.run(answer, controller), flush=True)
        thread.close(cleanup=controller.unload)

asyncio.run(main())
"""


async def test_calls_run_one_at_a_time_on_one_thread_off_the_event_loop():
    thread = EngineThread()
    seen = []

    def job(i):
        seen.append((i, threading.get_ident()))
        time.sleep(0.01)
        return i

    results = await __import__("asyncio").gather(*(thread.run(job, i) for i in range(3)))
    thread.close()
    assert results == [0, 1, 2]
    assert len({ident for _, ident in seen}) == 1 and seen[0][1] != threading.get_ident()


@pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")
def test_a_process_that_generated_on_the_engine_thread_exits_cleanly(tiny_model_dir):
    done = subprocess.run(
        [sys.executable, "-c", TWO_APPS_THEN_EXIT, str(tiny_model_dir)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["3", "3"]
