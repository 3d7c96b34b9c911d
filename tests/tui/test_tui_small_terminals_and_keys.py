"""Small terminals, tmux and keys: at 80×24 decode tok/s and the context gauge stay in
view, the footer keeps Quit, no key is tmux's prefix, keys can be remapped in
config.toml, the palette shows keys, Esc closes the keys panel."""

from __future__ import annotations

from pathlib import Path

import pytest

from anechat.chat.controller import LoadedModel
from anechat.config import Settings
from anechat.engines.base import Figures
from anechat.tui.chat.actions import ACTIONS
from tui_support import quiet_app, wait_for

pytestmark = pytest.mark.anyio


def _text(app) -> str:
    """The whole screen as plain text, row by row."""
    from rich.console import Console

    console = Console(width=app.size.width, record=True, file=open("/dev/null", "w"), color_system=None)
    console.print(app.screen._compositor.render_full_update())  # noqa: SLF001
    return console.export_text()


async def test_at_80x24_the_speed_and_context_stay_visible_and_the_panels_come_back_when_it_grows():
    app = quiet_app(history=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        screen.status.set_model(LoadedModel("tiny", Path("/x"), "coreml", "MIL on CPU"), 512)
        screen.status.set_context(128)
        screen.speed.start_turn()
        screen.speed.show_live(Figures(prompt_tokens=100, generation_tokens=28, ttft_s=0.2, prefill_tps=500.0, decode_tps=42.5))
        # the footer keeps Quit at 80 columns
        await wait_for(pilot, lambda: "decode 42.5 tok/s" in _text(app) and "^q Quit" in _text(app))
        assert "ctx ██░░░░░░ 128/512" in _text(app) and not screen.query_one("#side").display
        await pilot.resize_terminal(120, 40)
        await wait_for(pilot, lambda: screen.query_one("#side").display and not screen.figures_bar.display)
        await pilot.resize_terminal(80, 24)
        await wait_for(pilot, lambda: screen.figures_bar.display and not screen.query_one("#side").display)


def test_no_key_is_tmuxs_prefix():
    assert "ctrl+b" not in {key for key, *_ in ACTIONS}


async def test_keys_can_be_remapped_in_the_config_and_the_palette_shows_them():
    copied = []
    settings = Settings(keys={"copy_answer": "f3", "no_such_action": "f4"})
    app = quiet_app(config=settings, history=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.copy_to_clipboard = copied.append
        app.screen.pane.focus()
        await pilot.press("f3")
        await wait_for(pilot, lambda: any("no answer to copy" in str(n.message) for n in app._notifications))  # noqa: SLF001
        assert any("no_such_action" in line for line in app.startup_warnings)  # named, not silently dropped
        titles = [command.title for command in app.get_system_commands(app.screen)]
        assert "Copy the last answer (f3)" in titles and "Quit (^q)" in titles
        assert titles.count("Quit (^q)") == 1 and "Quit" not in titles


async def test_escape_closes_the_keys_panel():
    app = quiet_app(history=False)
    async with app.run_test(size=(120, 40)) as pilot:
        app.action_show_help_panel()
        await wait_for(pilot, lambda: bool(app.screen.query("HelpPanel")))
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.screen.query("HelpPanel"))
