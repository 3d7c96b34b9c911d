"""Themes are TOML files in themes/; one uses only the 16 ANSI colours; the choice persists."""

from __future__ import annotations

import pytest

from anechat.config import load_config
from anechat.tui.theme_files import load_themes, theme_from_toml
from tui_support import quiet_app, wait_for

pytestmark = pytest.mark.anyio


def test_at_least_three_theme_files_load_and_one_is_for_16_colour_terminals():
    themes, warnings = load_themes()
    names = {t.name for t in themes}
    assert {"anechat-dark", "anechat-light", "anechat-16"} <= names
    assert warnings == []
    ansi = next(t for t in themes if t.name == "anechat-16")
    assert ansi.ansi
    variables = [v for k, v in ansi.variables.items() if not k.endswith("text-style")]
    colours = [ansi.primary, ansi.secondary, ansi.accent, ansi.error, ansi.warning, ansi.success, *variables]
    assert all(c.startswith("ansi_") for c in colours)


def test_a_broken_theme_file_is_named_in_the_error():
    with pytest.raises(ValueError, match="mine.toml: unknown keys colour"):
        theme_from_toml('name = "x"\nprimary = "#fff"\ncolour = 1\n', "mine.toml")
    with pytest.raises(ValueError, match="bad.toml"):
        theme_from_toml("name = ", "bad.toml")


async def test_the_app_opens_with_the_theme_asked_for():
    app = quiet_app(theme="anechat-16")
    async with app.run_test():
        assert app.theme == "anechat-16"
        assert app.current_theme.ansi


async def test_an_unknown_theme_falls_back_to_the_default_with_a_notice():
    app = quiet_app(theme="no-such-theme")
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.theme == "anechat-dark"
        assert any("unknown theme 'no-such-theme'" in w for w in app.startup_warnings)


async def test_choosing_a_theme_in_the_app_is_saved_in_the_config_file(tmp_path, monkeypatch):
    monkeypatch.setenv("ANECHAT_CONFIG_DIR", str(tmp_path))
    app = quiet_app(save_settings=True)
    async with app.run_test() as pilot:
        app.theme = "anechat-light"
        await pilot.pause()
    assert load_config().theme == "anechat-light"


async def test_the_16_colour_theme_paints_only_ansi_colours_on_every_screen():
    from rich.color import ColorType

    app = quiet_app(theme="anechat-16")
    async with app.run_test(size=(120, 36)) as pilot:
        steps = [([], "MainScreen", None), (["ctrl+s"], "ParamsScreen", None),
                 (["escape", "ctrl+o"], "ModelPicker", "scanned"), (["escape", "ctrl+e"], "EnginePicker", "found")]
        for keys, shown, filled in steps:
            await pilot.press(*keys)

            def ready() -> bool:
                """the screen, with what it looks up shown"""
                screen = app.screen
                return type(screen).__name__ == shown and (filled is None or bool(getattr(screen, filled)))

            await wait_for(pilot, ready, limit_s=30)
            await pilot.pause()
            painted = app.screen._compositor.render_update(full=True, screen_stack=app._background_screens)
            other = {
                str(colour)
                for segment in app.console.render(painted)
                if segment.style is not None
                for colour in (segment.style.color, segment.style.bgcolor)
                if colour is not None and colour.type not in (ColorType.DEFAULT, ColorType.STANDARD)
            }
            assert other == set(), f"{type(app.screen).__name__} paints {other}"
