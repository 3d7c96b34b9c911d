"""What streaming costs on the wire: the bytes Textual writes to the terminal while a
fixed answer streams, with and without --low-motion (slow SSH links)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import textual.screen
from textual.drivers.headless_driver import HeadlessDriver

from anechat.chat.controller import ChatController, LoadedModel
from anechat.engines.base import (
    Availability, Engine, Figures, GenerationStats, MemoryReport, ModelInfo, Session, TextDelta,
)
from anechat.tui import motion
from tui_support import quiet_app, send_and_wait, wait_for

pytestmark = pytest.mark.anyio

#: a fixed answer: prose, a list and a code block, as a model would write it
ANSWER_WORDS = (
    ("Here is a short guide to baking bread at home. " * 6 + "\n\n"
     + "".join(f"- step {i}: mix, knead and wait a little longer\n" for i in range(8)) + "\n"
     + "```python\n" + "".join(f"grams_{i} = cups_{i} * 120\n" for i in range(6)) + "```\n\n"
     + "And that is all there is to it. " * 6).split(" ")
) * 3
TOKENS_PER_S = 80.0
#: bytes are counted while these tokens stream (the load, the first frame and the final
#: render cost the same in both modes; what low motion saves is per streamed second)
COUNTED = range(40, len(ANSWER_WORDS) - 10)


class FixedSession(Session):
    """Streams ANSWER_WORDS at TOKENS_PER_S, one word per token, with figures like an engine's."""

    info = ModelInfo(name="fixed", path=Path("/fixed"), context_length=4096)
    sent = 0  # tokens handed out so far in this answer

    def generate(self, messages, params=None, cancel=None):
        started = time.perf_counter()
        text = ""
        for n, word in enumerate(ANSWER_WORDS, 1):
            time.sleep(1 / TOKENS_PER_S)
            self.sent = n
            piece = word if n == 1 else " " + word
            text += piece
            figures = Figures(prompt_tokens=20, generation_tokens=n, ttft_s=0.05, prefill_tps=400.0, decode_tps=TOKENS_PER_S)
            yield TextDelta(piece, (n,), figures)
            if cancel is not None and cancel.cancelled:
                break
        yield GenerationStats.from_figures(figures, peak_memory_bytes=0, finish_reason="stop", context_tokens=20 + n, text=text)

    def generate_ids(self, prompt_ids, params=None, cancel=None, *, ignore_eos=False):
        raise NotImplementedError

    def count_tokens(self, messages):
        return 20

    @property
    def cached_tokens(self):
        return 0

    def reset(self):
        pass


class FixedEngine(Engine):
    name = "fixed"

    def __init__(self) -> None:
        self._session = FixedSession()

    @classmethod
    def available(cls):
        return Availability(True, "fixed answers")

    def load(self, path, *, context_length=None):
        return self._session

    def unload(self):
        pass

    def measure_memory(self):
        return MemoryReport()

    @property
    def session(self):
        return self._session


class CountingDriver(HeadlessDriver):
    """The headless driver, but Textual renders to it as to a terminal; it counts the
    bytes written while the session streams the COUNTED tokens."""

    written = 0
    session: FixedSession | None = None

    @property
    def is_headless(self) -> bool:
        return False

    def write(self, data: str) -> None:
        if CountingDriver.session is not None and CountingDriver.session.sent in COUNTED:
            CountingDriver.written += len(data.encode())


def fixed_controller() -> ChatController:
    controller = ChatController()
    controller.engine = FixedEngine()
    controller.session = controller.engine.session
    controller.loaded = LoadedModel("fixed", Path("/fixed"), "fixed", "scripted")
    return controller


async def streamed_bytes(low_motion: bool, monkeypatch) -> int:
    monkeypatch.setattr(textual.screen, "UPDATE_PERIOD", 1 / int(motion.LOW_MOTION_FPS) if low_motion else 1 / 60)
    app = quiet_app(controller=fixed_controller(), low_motion=low_motion, history=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: app.screen.has_model())
        await pilot.pause()
        app._driver.__class__ = CountingDriver
        CountingDriver.written, CountingDriver.session = 0, app.controller.session
        await send_and_wait(pilot, "How do I bake bread?")
        written = CountingDriver.written
        app._driver.__class__ = HeadlessDriver
    return written


async def test_low_motion_cuts_the_bytes_a_streaming_answer_writes_by_more_than_half(monkeypatch):
    normal = await streamed_bytes(False, monkeypatch)
    calm = await streamed_bytes(True, monkeypatch)
    print(f"streamed bytes: normal {normal}, low motion {calm}, cut {1 - calm / normal:.0%}")
    assert normal > 0 and calm <= 0.4 * normal
