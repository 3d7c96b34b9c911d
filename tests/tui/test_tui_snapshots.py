"""Snapshots (pytest-textual-snapshot) of the main screen, the model picker and the
parameters dialog. Deterministic: frozen gauges, no generation, fixed model paths.

Update after an intended change: pytest tests/test_tui_snapshots.py --snapshot-update
"""

from __future__ import annotations

from pathlib import Path

from anechat.catalog import list_models
from tui_support import models_home, quiet_app, wait_for

SIZE = (110, 32)


def test_main_screen(snap_compare):
    async def type_a_draft(pilot):
        await pilot.press(*"What is the capital of France?")

    assert snap_compare(quiet_app(low_motion=True), run_before=type_a_draft, terminal_size=SIZE)


def test_model_picker(snap_compare, tmp_path, monkeypatch, tiny_model_dir):
    models_home(tmp_path, monkeypatch, tiny_model_dir)
    # real catalog entries; only their folders are renamed so the screen is the same on every machine
    entries = [e.with_(path=Path("/models") / e.name) for e in list_models()]

    async def open_picker(pilot):
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: getattr(pilot.app.screen, "scanned", False), limit_s=30)
        await pilot.press(*"tiny")
        await pilot.pause()

    app = quiet_app(low_motion=True, list_models=lambda: entries)
    assert snap_compare(app, run_before=open_picker, terminal_size=SIZE)


def test_parameters_dialog(snap_compare):
    async def open_with_a_bad_value(pilot):
        await pilot.press("ctrl+s")
        pilot.app.screen.query_one("#param-temperature").value = "-1"
        await pilot.press("ctrl+s")
        await pilot.pause()

    assert snap_compare(quiet_app(low_motion=True), run_before=open_with_a_bad_value, terminal_size=SIZE)
