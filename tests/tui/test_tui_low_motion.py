"""Low motion (for slow SSH links): fewer frames, no animations, no blinking cursor."""

from __future__ import annotations

import os

import pytest

from anechat.tui.widgets.chat_input import ChatInput
from tui_support import quiet_app

pytestmark = pytest.mark.anyio


async def test_low_motion_turns_off_animation_and_blinking_and_draws_less():
    calm, normal = quiet_app(low_motion=True), quiet_app()
    async with calm.run_test():
        assert calm.animation_level == "none"
        assert calm.screen.query_one(ChatInput).cursor_blink is False
    for rate in ("drain_hz", "markdown_hz", "stats_hz", "gauges_hz", "ui_budget"):
        assert getattr(calm, rate) <= getattr(normal, rate)
    assert calm.drain_hz < normal.drain_hz


def test_low_motion_lowers_textuals_frame_rate(monkeypatch):
    import textual.screen

    from anechat.tui import motion

    monkeypatch.delenv("TEXTUAL_FPS", raising=False)
    monkeypatch.delenv("TEXTUAL_ANIMATIONS", raising=False)
    monkeypatch.setattr(textual.screen, "UPDATE_PERIOD", textual.screen.UPDATE_PERIOD)
    motion.apply_low_motion()
    assert os.environ["TEXTUAL_FPS"] == motion.LOW_MOTION_FPS and os.environ["TEXTUAL_ANIMATIONS"] == "none"
    assert textual.screen.UPDATE_PERIOD == pytest.approx(1 / int(motion.LOW_MOTION_FPS))
