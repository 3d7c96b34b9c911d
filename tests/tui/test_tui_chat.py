"""Chatting in the app with a real (tiny, random-weight) model on the real MLX engine:
answers stream into the chat pane, the speed panel follows, Esc stops an answer,
the conversation survives engine switches, models load from the picker."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest

from anechat.chat.controller import ChatController
from anechat.engines.base import SamplingParams
from anechat.engines.registry import availability
from anechat.tui.screens.engine_picker import EnginePicker
from anechat.safe_text import sanitize_for_terminal
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.widgets.chat_pane import AssistantMessage, Notice, UserMessage
from anechat.tui.widgets.speed_panel import SpeedPanel
from anechat.tui.widgets.status_line import StatusLine
from tui_support import PacedController, loaded, models_home, quiet_app, wait_for

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here"),
]


def chat_app(model_dir, max_tokens: int = 48, paced: bool = False, **kwargs):
    """The app with the tiny model loading on MLX. The drawing budget is lifted so every
    frame is drawn (the tiny model answers in well under a second); ``paced`` hands its
    tokens on no faster than one per 20 ms, for tests that watch an answer stream in."""
    controller = (PacedController if paced else ChatController)(params=SamplingParams(max_tokens=max_tokens))
    app = quiet_app(model=str(model_dir), engine="mlx", controller=controller, **kwargs)
    app.ui_budget = 1.0
    return app


async def send(pilot, text: str) -> None:
    """Type ``text`` and send it (what Enter does), then wait until the answer has begun."""
    screen = pilot.app.screen
    box = screen.query_one(ChatInput)
    box.load_text(text)
    turns = screen.turn_view
    wanted = turns.turns_started + 1
    box.submit()

    def started() -> bool:
        """the answer to begin"""
        return turns.turns_started >= wanted

    await wait_for(pilot, started)


async def answered(pilot) -> None:
    turns = pilot.app.screen.turn_view

    def done() -> bool:
        """the answer to finish"""
        return turns.turns_finished >= turns.turns_started

    await wait_for(pilot, done, limit_s=120)


def status_text(app) -> str:
    return str(app.screen.query_one(StatusLine).render())


async def test_a_message_streams_in_and_the_answer_is_rendered_whole_at_the_end(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=100, paced=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send(pilot, "Hello there")
        partial_lengths = set()
        turns = app.screen.turn_view
        while turns.streaming:
            partial_lengths.add(len(turns.turn.answer.text))
            await asyncio.sleep(0.005)
        assert [m.role for m in app.controller.messages] == ["user", "assistant"]
        final = sanitize_for_terminal(app.controller.messages[-1].content)
        answer = app.screen.pane.last_answer()
        assert answer.text == final and answer.body.source == final
        assert len(partial_lengths - {0, len(final)}) >= 1, "text appeared before the answer was complete"
        assert [w.text for w in app.screen.query(UserMessage)] == ["Hello there"]


async def test_the_chat_follows_the_answer_unless_the_person_scrolled_up(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=400)
    async with app.run_test(size=(70, 18)) as pilot:
        await loaded(pilot)
        pane = app.screen.pane
        await send(pilot, "Tell me everything")
        await answered(pilot)
        await pilot.pause()
        assert pane.max_scroll_y > 0 and pane.scroll_y == pane.max_scroll_y  # followed to the end

        await send(pilot, "And more")
        await wait_for(pilot, lambda: pane.max_scroll_y > 0)
        pane.scroll_home(animate=False, immediate=True)  # the person scrolls up to read
        await answered(pilot)
        await pilot.pause()
        assert pane.scroll_y == 0 < pane.max_scroll_y  # left where they were


async def test_the_speed_panel_updates_during_and_after_an_answer(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=300)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        speed = app.screen.query_one(SpeedPanel)
        await send(pilot, "Tell me a story")
        live = []
        while app.screen.turn_view.streaming:
            if speed.tokens_out:
                live.append((speed.tokens_out, speed.decode_tps, speed.state))
            await asyncio.sleep(0.005)
        assert live and live[0][2] == "generating…", "figures shown while tokens arrive"
        stats = app.controller.last_stats
        assert (speed.tokens_in, speed.tokens_out) == (stats.prompt_tokens, stats.generation_tokens)
        assert speed.decode_tps == stats.decode_tps > 0 and speed.ttft_s == stats.ttft_s
        assert speed.prefill_tps == stats.prefill_tps > 0
        assert speed.history == [stats.decode_tps]
        assert f"ctx {stats.context_tokens}/512" in status_text(app)
        await send(pilot, "And another")
        await answered(pilot)
        assert len(speed.history) == 2  # the sparkline grows by one point per turn


async def test_escape_stops_an_answer_and_the_chat_goes_on(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=5000)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send(pilot, "Count to a thousand")

        def streaming() -> bool:
            """some tokens to arrive"""
            return app.screen.query_one(SpeedPanel).tokens_out > 3

        await wait_for(pilot, streaming)
        await pilot.press("escape")
        await answered(pilot)
        stopped = app.controller.last_stats
        assert stopped.finish_reason == "cancelled" and stopped.generation_tokens < 5000
        meta = str(app.screen.pane.last_answer().query_one(".answer-meta").render())
        assert meta.startswith("stopped")
        app.controller.state.params = app.controller.state.params.with_(max_tokens=8)
        await send(pilot, "Now just say hi")
        await answered(pilot)
        assert app.controller.last_stats.finish_reason in ("stop", "length")
        assert [m.role for m in app.controller.messages] == ["user", "assistant", "user", "assistant"]
        assert app.controller.last_stats.cached_tokens > 0  # the stopped turn's cache was reused


async def test_while_an_answer_streams_the_chat_starts_nothing_else_and_says_why(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=5000)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send(pilot, "Count to a thousand")
        screen = app.screen
        reason = screen.busy_reason()
        assert reason == "an answer is streaming: Esc stops it first"
        assert not await screen.send("another question")
        await screen.action_new_chat()
        screen.load_model(str(tiny_model_dir), "mlx")
        screen.action_sessions()
        assert not await screen.unload_model()
        assert screen is app.screen and not screen.loading_model and app.controller.loaded is not None
        assert [w.text for w in screen.query(UserMessage)] == ["Count to a thousand"]  # the chat was not cleared

        def told() -> bool:
            """send, new chat, load and sessions to say why"""
            return sum(reason in str(n.message) for n in app._notifications) == 4

        await wait_for(pilot, told)
        await pilot.press("escape")
        await answered(pilot)
        assert screen.busy_reason() is None


async def test_an_engine_that_cannot_run_the_model_keeps_the_conversation(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=8)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send(pilot, "First question")
        await answered(pilot)
        before = list(app.controller.messages)
        # the tiny model is a Hugging Face folder that only MLX runs; no Core ML conversion of it is here
        app.screen.switch_engine("coreml")

        def settled() -> bool:
            """the switch attempt to finish"""
            return any("conversation is kept" in n.text for n in app.screen.query(Notice))

        await wait_for(pilot, settled)
        notices = [n.text for n in app.screen.query(Notice)]
        assert any("no coreml variant of tiny-llama here — make one: anechat convert tiny-llama --to coreml" in t for t in notices)
        assert app.controller.messages == before and app.controller.loaded.engine == "mlx"
        await send(pilot, "Second question")
        await answered(pilot)
        assert len(app.controller.messages) == 4 and app.controller.last_stats.cached_tokens > 0


@pytest.mark.coreml
async def test_switching_to_core_ml_continues_the_same_conversation(tmp_path, monkeypatch, tiny_model_dir, tiny_coreml_dir):
    # the Core ML conversion sits next to the model under the name `anechat convert` gives it
    home = models_home(tmp_path, monkeypatch, tiny_model_dir)
    (home / "tiny-llama-coreml-ctx64-fp16").symlink_to(tiny_coreml_dir, target_is_directory=True)
    app = chat_app(home / "tiny-llama", max_tokens=4)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send(pilot, "Hi")
        await answered(pilot)
        first_answer = app.controller.messages[-1]
        app.screen.switch_engine("coreml")

        def switched() -> bool:
            """the Core ML model to load"""
            loaded_ = app.controller.loaded
            return loaded_ is not None and loaded_.engine == "coreml" and not app.screen.loading_model

        await wait_for(pilot, switched, limit_s=120)
        assert app.controller.loaded.name == "tiny-llama-coreml-ctx64-fp16"
        assert "coreml · MIL on CPU — no Neural Engine here" in status_text(app)  # honest about what runs
        assert app.controller.messages[-1] == first_answer  # the conversation is still there
        await send(pilot, "Yo")
        await answered(pilot)
        stats = app.controller.last_stats
        assert stats.finish_reason in ("stop", "length") and stats.generation_tokens >= 1
        assert stats.cached_tokens == 0 and stats.prompt_tokens > 10  # the whole history was prefilled there
        assert [m.role for m in app.controller.messages] == ["user", "assistant", "user", "assistant"]


async def test_the_engine_switcher_offers_only_engines_that_can_run_here(tiny_model_dir):
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await pilot.press("ctrl+e")
        await pilot.pause()
        picker = app.screen
        assert isinstance(picker, EnginePicker) and picker.current == "mlx"
        await wait_for(pilot, lambda: picker.found)
        await pilot.press("enter")  # the highlighted (first available) engine: mlx, already loaded
        await pilot.pause()
        assert not isinstance(app.screen, EnginePicker)
        assert any("already on mlx" in str(n.message) for n in app._notifications)


async def test_a_model_picked_in_the_picker_loads_in_the_background(tmp_path, monkeypatch, tiny_model_dir):
    models_home(tmp_path, monkeypatch, tiny_model_dir)
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("ctrl+o")
        await wait_for(pilot, lambda: app.screen.entries, limit_s=30)
        await pilot.press(*"tiny-llama")
        app.screen.action_choose()  # what Enter does, without waiting for the app to go idle
        seen = set()
        while app.controller.session is None or app.screen.loading_model:
            seen.add(status_text(app))
            await asyncio.sleep(0.001)
        # a visible state while it loads, first on the line (a narrow terminal cuts the rest)
        assert any(state.lstrip("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ ").startswith("loading") for state in seen)
        assert app.controller.loaded.name == "tiny-llama" and app.controller.loaded.engine == "mlx"
        assert "tiny-llama · mlx" in status_text(app) and "ctx 0/512" in status_text(app)
        assert any(n.text.startswith("loaded tiny-llama on mlx") for n in app.screen.query(Notice))


async def test_a_model_that_fails_to_load_shows_why_in_the_app(tmp_path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    app = quiet_app(model=str(broken), engine="mlx")
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: not app.screen.loading_model and app.screen.query(Notice))
        error = app.screen.query(Notice).last()
        assert error.kind == "error" and "could not load" in error.text
        assert app.controller.session is None and "no model" in status_text(app)


async def test_a_failed_load_after_a_good_one_leaves_no_half_loaded_model(tmp_path, tiny_model_dir):
    # a copy of the tiny model whose config does not match its weights: the catalog accepts
    # it, the engine refuses it only once the old model is already unloaded
    broken = tmp_path / "tiny-mismatched"
    shutil.copytree(tiny_model_dir, broken)
    config = json.loads((broken / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps({**config, "intermediate_size": 96}))
    app = chat_app(tiny_model_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        app.screen.load_model(str(broken), "mlx")
        await wait_for(pilot, lambda: not app.screen.loading_model)
        error = app.screen.query(Notice).last().text
        assert "could not load" in error
        assert not app.screen.has_model() and "no model" in status_text(app)
        app.screen.query_one(ChatInput).load_text("still there?")
        app.screen.query_one(ChatInput).submit()
        await wait_for(pilot, lambda: "no model is loaded" in app.screen.query(Notice).last().text)


async def test_new_chat_clears_the_conversation_and_copy_takes_the_last_answer(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=8)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send(pilot, "Hi")
        await answered(pilot)
        await pilot.press("ctrl+r")
        assert app.clipboard == sanitize_for_terminal(app.controller.messages[-1].content)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert app.controller.messages == [] and not app.screen.query(AssistantMessage)
        await pilot.press("ctrl+r")
        assert any("no answer to copy yet" in str(n.message) for n in app._notifications)


async def test_a_message_longer_than_the_context_is_refused_with_a_message(tiny_model_dir):
    app = chat_app(tiny_model_dir, max_tokens=8)
    async with app.run_test(size=(120, 40)) as pilot:
        await loaded(pilot)
        await send(pilot, "word " * 5000)
        await answered(pilot)
        meta = str(app.screen.pane.last_answer().query_one(".answer-meta").render())
        assert "context" in meta and "512" in meta
        assert app.controller.messages == []  # the refused message is not part of the conversation
        await send(pilot, "short")
        await answered(pilot)
        assert [m.role for m in app.controller.messages] == ["user", "assistant"]
