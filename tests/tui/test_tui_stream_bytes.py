"""What streaming costs on the wire: the bytes Textual writes to the terminal while a
fixed answer streams, with and without --low-motion (slow SSH links)."""

from __future__ import annotations

import pytest
import textual.screen
from textual.drivers.headless_driver import HeadlessDriver

from anechat.tui import motion
from fixed_engine import ANSWER_WORDS, FixedSession, fixed_controller
from tui_support import quiet_app, send_and_wait, wait_for

pytestmark = pytest.mark.anyio

#: bytes are counted while these tokens stream (the load, the first frame and the final
#: render cost the same in both modes; what low motion saves is per streamed second)
COUNTED = range(40, len(ANSWER_WORDS) - 10)


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
