"""No dead keys and no silent waits: typing goes to the message box after every dialog
and load, a message sent before a model is ready is kept and sent once it is, and
whatever takes time says what it is doing and for how long."""

from __future__ import annotations

from pathlib import Path

import pytest

from anechat.chat.controller import ChatController, LoadedModel
from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.widgets.chat_pane import Notice
from tui_support import quiet_app, wait_for

pytestmark = pytest.mark.anyio
needs_mlx = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")


class StepClock:
    """An app clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def screen_line(widget) -> str:
    """What the terminal shows on the widget's first row."""
    return widget.render_line(0).text


@pytest.mark.parametrize("key", ["ctrl+s", "ctrl+e", "ctrl+o", "ctrl+l", "ctrl+g"])
async def test_typing_goes_to_the_message_box_after_a_dialog_or_screen_closes(key):
    app = quiet_app(list_models=lambda: [], history=False)
    async with app.run_test(size=(120, 40)) as pilot:
        main = app.screen
        main.pane.focus()  # the person had moved away from the box (to scroll, say)
        await pilot.press(key)
        await wait_for(pilot, lambda: app.screen is not main)
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is main)
        await pilot.press("h", "i")
        assert isinstance(app.focused, ChatInput) and app.focused.text == "hi"


async def test_a_wait_leads_the_status_line_with_its_step_and_elapsed_time_even_at_80_columns():
    clock = StepClock()
    app = quiet_app(clock=clock, history=False)
    async with app.run_test(size=(80, 24)) as pilot:
        status = app.screen.status
        status.set_model(LoadedModel("a-model-with-a-very-long-name-" * 3, Path("/x"), "coreml", "MIL on CPU"), 512)
        status.begin("loading the-default-model on coreml")
        clock.now += 12
        status.step("converting to Core ML", 0.4)
        await pilot.pause()
        wanted = "loading the-default-model on coreml · converting to Core ML 40% · 12 s"
        assert status.activity_text == wanted and wanted in screen_line(status)  # not cut off
        clock.now += 60
        await wait_for(pilot, lambda: "1 min 12 s" in screen_line(status))  # it keeps counting by itself
        status.end()
        await pilot.pause()
        assert "converting" not in screen_line(status) and "a-model-with" in screen_line(status)


async def test_checking_engines_says_how_long_it_has_taken():
    import threading

    release = threading.Event()

    def slow_check(name):
        release.wait(30)
        return availability(name)

    app = quiet_app(engine_check=slow_check, history=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+e")
        picker = app.screen

        def counting() -> bool:
            """the wait to show at least one elapsed second"""
            shown = str(picker.query_one("#engine-list").get_option_at_index(0).prompt)
            return shown.startswith("checking engines… ") and not shown.endswith(" 0 s")

        await wait_for(pilot, counting, limit_s=30)
        release.set()
        await wait_for(pilot, lambda: bool(picker.found), limit_s=60)


@needs_mlx
async def test_a_message_sent_before_any_model_is_loaded_is_kept_and_sent_once_one_is(tiny_model_dir):
    app = quiet_app(controller=ChatController(params=SamplingParams(max_tokens=8)), history=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        box = screen.query_one(ChatInput)
        box.load_text("Hello, are you there?")
        box.submit()
        await wait_for(pilot, lambda: any("kept" in n.text for n in screen.query(Notice)))
        assert screen.pending == "Hello, are you there?" and app.controller.messages == []
        screen.pane.focus()
        screen.load_model(str(tiny_model_dir), "mlx")
        await wait_for(pilot, lambda: screen.turn_view.turns_finished == 1, limit_s=120)
        assert [m.content for m in app.controller.messages if m.role == "user"] == ["Hello, are you there?"]
        assert screen.pending is None
        assert isinstance(app.focused, ChatInput)  # the load hands the keys back to the box


class HeldLoad(ChatController):
    """Loads as the real controller does, once the test lets the load go."""

    def __init__(self, **kwargs) -> None:
        import threading

        super().__init__(**kwargs)
        self.started, self.release = threading.Event(), threading.Event()

    def load(self, *args, **kwargs):
        self.started.set()
        self.release.wait(60)
        return super().load(*args, **kwargs)


@needs_mlx
async def test_the_chat_stays_on_screen_and_the_box_takes_keys_while_a_model_loads(tiny_model_dir):
    from textual.widgets import LoadingIndicator

    controller = HeldLoad(params=SamplingParams(max_tokens=4))
    app = quiet_app(controller=controller, history=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        screen.load_model(str(tiny_model_dir), "mlx")
        await wait_for(pilot, controller.started.is_set)
        await pilot.press("h", "i")
        box = screen.query_one(ChatInput)
        assert screen.loading_model and box.text == "hi"
        assert not app.screen.query(LoadingIndicator)  # nothing covers the chat while it loads
        assert box.region.area > 0 and screen.pane.region.area > 0
        controller.release.set()
        await wait_for(pilot, lambda: app.controller.session is not None and not screen.loading_model, limit_s=120)


@needs_mlx
async def test_a_model_brings_its_sampling_defaults_and_the_dialog_says_where_they_came_from(tmp_path, tiny_model_dir):
    import json
    import shutil

    from anechat.tui.screens.params import ParamsScreen

    model = tmp_path / "tiny-sampling"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**config, "do_sample": True, "temperature": 0.6, "top_p": 0.9}))
    app = quiet_app(model=str(model), engine="mlx", history=False)  # the app's own chat
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.controller.session is not None and not app.screen.loading_model, limit_s=120)
        params = app.controller.state.params
        assert (params.temperature, params.top_p, params.repetition_penalty) == (0.6, 0.9, 1.1)
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen))
        source = str(app.screen.query_one("#params-source").render())
        assert "generation_config.json: temperature, top_p" in source and "repetition penalty 1.1" in source
        assert app.screen.query_one("#param-repetition_penalty").value == "1.1"


async def test_a_long_prefill_is_shown_first_on_the_status_line_counting_until_the_first_token():
    import threading

    from fixed_engine import fixed_controller

    controller = fixed_controller()
    gate = controller.session.prefill_gate = threading.Event()
    app = quiet_app(controller=controller, history=False)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        assert await screen.send("Summarise this long document")
        await wait_for(pilot, lambda: screen.status.activity_text.startswith("prefill · Esc stops · "))
        await wait_for(pilot, lambda: screen.speed.state.startswith("prefill… ") and screen.speed.state.endswith(" s"))
        assert "prefill · Esc stops" in screen_line(screen.status)  # first on the line, not cut at 80 columns
        gate.set()
        await wait_for(pilot, lambda: screen.turn_view.turns_finished == 1, limit_s=60)
        assert screen.status.activity is None and "prefill" not in screen_line(screen.status)
