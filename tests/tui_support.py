"""Helpers for the app's pilot tests: a quiet app (no config writes, still gauges)
and waiting for a condition without ever asserting a time."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from anechat.chat.controller import ChatController
from anechat.engines.base import TextDelta
from anechat.metrics.gauges import Gauges, PowerReading

#: gauges that never change, so screens can be compared between runs and machines
FROZEN_GAUGES = Gauges(
    process_rss=150 * 1024**2,
    system_used=6 * 1024**3,
    system_total=24 * 1024**3,
    model_disk_bytes=None,
    power=PowerReading(False, "power: macOS only (IOReport)"),
)


def quiet_app(**kwargs):
    from anechat.tui.app import AnechatApp

    kwargs.setdefault("save_settings", False)
    kwargs.setdefault("gauges", FROZEN_GAUGES)
    return AnechatApp(**kwargs)


def dump_stacks() -> None:
    """Every thread's stack, then every asyncio task's chain of awaits, to the real stderr."""
    import faulthandler
    import sys

    out = sys.__stderr__
    faulthandler.dump_traceback(file=out, all_threads=True)
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}: {task.get_coro()!r}", file=out)
        awaited = task.get_coro()
        while awaited is not None:
            frame = getattr(awaited, "cr_frame", None) or getattr(awaited, "ag_frame", None) or getattr(awaited, "gi_frame", None)
            if frame is None:
                print(f"    awaiting {awaited!r}", file=out)
            else:
                print(f"    {frame.f_code.co_filename}:{frame.f_lineno} in {frame.f_code.co_name}", file=out)
            awaited = getattr(awaited, "cr_await", None) or getattr(awaited, "ag_await", None) or getattr(awaited, "gi_yieldfrom", None)
    out.flush()


async def wait_for(pilot, predicate, *, limit_s: float = 60.0, step: float = 0.01) -> None:
    """Let the app run until ``predicate()`` holds; fail (with the limit) if it never does.

    Sleeps instead of ``pilot.pause()``, which would wait for the app to go idle
    (a streaming answer keeps it busy until the end).
    """
    deadline = time.monotonic() + limit_s
    while not predicate():
        if time.monotonic() > deadline:
            dump_stacks()  # where each thread and each task was: shown with the failure
            raise AssertionError(f"condition not reached within {limit_s} s: {predicate.__doc__ or predicate}")
        await asyncio.sleep(step)


async def send_and_wait(pilot, text: str, *, limit_s: float = 120.0) -> None:
    """Send ``text`` as Enter would, and wait for the whole answer."""
    screen = pilot.app.screen
    turns = screen.turn_view
    wanted = turns.turns_started + 1
    assert await screen.send(text)

    def done() -> bool:
        """the answer to finish"""
        return turns.turns_finished >= wanted

    await wait_for(pilot, done, limit_s=limit_s)


def models_home(tmp_path: Path, monkeypatch, *models: Path) -> Path:
    """A models folder holding links to ``models`` and an empty hub cache, for the catalog."""
    home = tmp_path / "models"
    home.mkdir()
    for model in models:
        (home / model.name).symlink_to(model, target_is_directory=True)
    monkeypatch.setenv("ANECHAT_MODELS_DIR", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    return home


class PacedController(ChatController):
    """The real engine and its figures, handed on no faster than one token per 20 ms, so an
    answer of the tiny model (hundreds of tok/s) lasts long enough to be drawn live."""

    def send(self, text, cancel=None):
        for event in super().send(text, cancel):
            yield event
            if isinstance(event, TextDelta):
                time.sleep(0.02)


async def loaded(pilot) -> None:
    """Wait until the app has loaded its model (and is not loading another)."""
    app = pilot.app

    def ready() -> bool:
        """the model to load"""
        return app.controller.session is not None and not app.screen.loading_model

    await wait_for(pilot, ready, limit_s=120)
