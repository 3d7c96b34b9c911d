"""The command palette's "Compare the current prompt on another engine or model" (issue 6):
the loaded model is the baseline, the person picks the other contestant, and the
compare screen runs the prompt being written (or the last one sent) on both."""

from __future__ import annotations

import pytest

from textual.command import CommandList

from anechat.chat.controller import ChatController
from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.tui.compare.screen import CompareScreen
from anechat.tui.chat.compare_entry import COMPARE_TITLE, ContestantPicker
from tui_support import models_home, quiet_app, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here"),
]

SIZE = (120, 40)


async def ready(pilot) -> None:
    app = pilot.app

    def loaded() -> bool:
        """the model to load"""
        return app.controller.session is not None and not app.screen.loading_model

    await wait_for(pilot, loaded, limit_s=120)


async def run_palette_command(pilot, title: str) -> None:
    """Ctrl+P, type the command's first words, Enter (Textual's own command palette)."""
    await pilot.press("ctrl+p")
    await pilot.press(*title[:24])

    def listed() -> bool:
        """the palette to list the command first (it searches its providers asynchronously)"""
        commands = pilot.app.screen.query_one(CommandList)
        first = commands.highlighted
        return first is not None and str(commands.get_option_at_index(first).prompt).startswith(title)

    await wait_for(pilot, listed, limit_s=30)
    await pilot.press("enter")
    await pilot.pause()


async def test_the_prompt_being_written_is_compared_with_a_picked_model_side_by_side(tmp_path, monkeypatch, tiny_model_dir, tiny_stop_model_dir):
    models_home(tmp_path, monkeypatch, tiny_model_dir, tiny_stop_model_dir)
    controller = ChatController(system_prompt="Be brief.", params=SamplingParams(max_tokens=4))
    app = quiet_app(model=str(tiny_model_dir), engine="mlx", controller=controller)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot)
        await pilot.press(*"Name a colour")  # written, not sent
        await run_palette_command(pilot, COMPARE_TITLE)
        picker = app.screen
        assert isinstance(picker, ContestantPicker)
        await wait_for(pilot, lambda: picker.scanned, limit_s=30)
        labels = [(c.model_label, c.engine) for c, _label in picker.choices]
        assert ("tiny-stop", "mlx") in labels
        assert labels[-1] == ("tiny-llama", "mlx")  # the loaded one on its own engine comes last
        assert "the loaded one again" in str(picker.choices[-1][1])
        picker.query_one("#contestant-list").highlighted = labels.index(("tiny-stop", "mlx"))
        await pilot.press("enter")
        await pilot.pause()

        compare = app.screen
        assert isinstance(compare, CompareScreen)
        assert [(c.model_label, c.engine) for c in compare.contestants] == [("tiny-llama", "mlx"), ("tiny-stop", "mlx")]
        assert compare.prompt == "Name a colour" and compare.system_prompt == "Be brief."
        assert compare.params.max_tokens == 4

        def finished() -> bool:
            """the comparison to finish"""
            return compare.report is not None

        await wait_for(pilot, finished, limit_s=120)
        assert [r.ok for r in compare.report.results] == [True, True]
        assert compare.query_one("#compare-summary").display
        await pilot.press("escape")
        assert app.screen.__class__.__name__ == "MainScreen"
        assert app.controller.loaded.name == "tiny-llama"  # the chat's model stays loaded


async def test_without_a_model_the_palette_entry_explains_what_to_do_first():
    app = quiet_app()
    async with app.run_test(size=SIZE) as pilot:
        assert COMPARE_TITLE in [c.title for c in app.get_system_commands(app.screen)]
        await run_palette_command(pilot, COMPARE_TITLE)
        assert app.screen.__class__.__name__ == "MainScreen"
        assert any("load a model first (Ctrl+O)" in str(n.message) for n in app._notifications)
