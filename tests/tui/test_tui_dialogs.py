"""Dialogs: system prompt & sampling (validated), the model picker, the engine switcher."""

from __future__ import annotations

import pytest
from textual.widgets import Input, OptionList, Static, TextArea

from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.tui.screens.engine_picker import EnginePicker
from anechat.tui.screens.model_picker import ModelPicker
from anechat.tui.screens.params import ParamsScreen, parse_params
from tui_support import models_home, quiet_app, wait_for

pytestmark = pytest.mark.anyio


async def _set(pilot, selector: str, value: str) -> None:
    field = pilot.app.screen.query_one(selector, Input)
    field.value = value
    await pilot.pause()


async def test_an_invalid_parameter_is_rejected_with_a_message_and_the_dialog_stays():
    app = quiet_app()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ParamsScreen)
        await _set(pilot, "#param-top_p", "1.5")
        await pilot.press("ctrl+s")
        assert isinstance(app.screen, ParamsScreen)
        error = str(app.screen.query_one("#params-error", Static).render())
        assert "top_p=1.5 is invalid" in error
        await _set(pilot, "#param-top_k", "many")
        await pilot.press("ctrl+s")
        assert "top_k=many is invalid: use an integer" in str(app.screen.query_one("#params-error", Static).render())
        assert app.controller.state.params == SamplingParams()  # nothing changed


async def test_valid_parameters_and_system_prompt_are_saved_for_the_chat():
    app = quiet_app()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+s")
        app.screen.query_one("#system-prompt", TextArea).text = "Answer in French."
        await _set(pilot, "#param-temperature", "0.7")
        await _set(pilot, "#param-seed", "42")
        await _set(pilot, "#param-max_tokens", "64")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert not isinstance(app.screen, ParamsScreen)
        state = app.controller.state
        assert state.system_prompt == "Answer in French."
        assert (state.params.temperature, state.params.seed, state.params.max_tokens) == (0.7, 42, 64)


async def test_escape_closes_the_parameters_without_saving():
    app = quiet_app()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+s")
        await _set(pilot, "#param-temperature", "0.9")
        await pilot.press("escape")
        assert not isinstance(app.screen, ParamsScreen)
        assert app.controller.state.params.temperature == 0.0


def test_parse_params_reads_blank_seed_as_random_and_names_bad_fields():
    base = SamplingParams()
    values = {"temperature": "0", "top_p": "1", "top_k": "0", "min_p": "0", "repetition_penalty": "1", "seed": "", "max_tokens": "8"}
    assert parse_params(values, base) == base.with_(max_tokens=8)
    with pytest.raises(Exception, match="max_tokens=0 is invalid"):
        parse_params({**values, "max_tokens": "0"}, base)


async def test_the_picker_lists_local_models_with_format_size_quantization_and_engines(tmp_path, monkeypatch, tiny_model_dir):
    models_home(tmp_path, monkeypatch, tiny_model_dir)
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        assert isinstance(app.screen, ModelPicker)
        picker = app.screen
        await wait_for(pilot, lambda: picker.entries, limit_s=30)
        names = [e.name for e in picker.shown]
        assert "tiny-llama" in names
        options = picker.query_one(OptionList)
        row = str(options.get_option_at_index(names.index("tiny-llama")).prompt)
        assert "hf" in row and "float32" in row and "runs on mlx" in row and "KB" in row
        await pilot.press(*"tiny")
        assert [e.name for e in picker.shown][0] == "tiny-llama"
        await pilot.press(*"zzzq")
        assert picker.shown == []
        await pilot.press("escape")
        assert not isinstance(app.screen, ModelPicker)


async def test_engines_that_cannot_run_here_are_listed_with_their_reason():
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+e")
        assert isinstance(app.screen, EnginePicker)
        await wait_for(pilot, lambda: app.screen.found, limit_s=60)
        options = app.screen.query_one(OptionList)
        for index, name in enumerate(app.screen.found):
            found = availability(name)
            option = options.get_option_at_index(index)
            assert option.disabled is (not found.ok)
            if not found.ok:
                assert "not available here" in str(option.prompt) and found.reason[:30] in str(option.prompt)
        await pilot.press("escape")


async def test_a_shown_error_goes_as_soon_as_the_field_is_fixed():
    app = quiet_app()
    async with app.run_test() as pilot:
        await pilot.press("ctrl+s")
        await _set(pilot, "#param-top_p", "1.5")
        await pilot.press("ctrl+s")
        error = app.screen.query_one("#params-error", Static)
        assert "top_p=1.5 is invalid" in str(error.render())
        await _set(pilot, "#param-top_p", "0.9")
        assert str(error.render()) == "" and not error.has_class("shown")
