"""Figures that stay with the answer: every answer ends with its one-line figures and
who wrote it, the speed panel and the context gauge move as soon as the engine has
figures, the sparkline labels turns by engine, and unchanged panels are not repainted."""

from __future__ import annotations

import asyncio

import pytest

from anechat.chat.controller import ChatController
from anechat.engines.base import MemoryReport, SamplingParams
from anechat.engines.registry import availability
from anechat.formatting import stats_line
from anechat.metrics.gauges import Gauges
from anechat.tui.widgets.memory_gauges import MemoryGauges
from tui_support import FROZEN_GAUGES, PacedController, quiet_app, send_and_wait, wait_for

pytestmark = pytest.mark.anyio
needs_mlx = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")


def test_the_one_stats_line_names_the_engine_and_the_model_variant():
    figures = {"prompt_tokens": 12, "generation_tokens": 40, "ttft_s": 0.12, "prefill_tps": 310.0, "decode_tps": 45.1, "finish_reason": "stop"}
    line = stats_line(figures, engine="coreml", model="qwen3-0.6b-coreml-lut6")
    assert line == "12 tok in · 40 tok out · TTFT 0.12 s · prefill 310.0 tok/s · decode 45.1 tok/s · coreml · qwen3-0.6b-coreml-lut6 · stop"
    assert stats_line({**figures, "engine": "mlx", "model": "m"}).endswith("· mlx · m · stop")  # as a history record keeps them


@needs_mlx
async def test_every_answer_ends_with_its_figures_and_the_panels_fill_in_as_soon_as_prefill_ends(tiny_model_dir):
    app = quiet_app(model=str(tiny_model_dir), engine="mlx", controller=PacedController(params=SamplingParams(max_tokens=100)), history=False)
    app.ui_budget = 1.0
    app.stats_hz = 1e-6  # live figures only once, when the engine first has them
    async with app.run_test(size=(120, 40)) as pilot:
        screen = app.screen
        await wait_for(pilot, lambda: app.controller.session is not None and not screen.loading_model, limit_s=120)
        seen = []

        async def watch() -> None:
            while True:
                if screen.turn_view.streaming and screen.speed.tokens_in is not None:
                    seen.append((screen.speed.tokens_in, screen.status.context_used))
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        await send_and_wait(pilot, "Tell me a long story")
        watcher.cancel()
        stats = app.controller.last_stats
        assert seen, "the prompt's figures appeared only at the end"
        assert seen[0][0] == stats.prompt_tokens and seen[0][1] > 0  # the context gauge moved during the first answer
        name = app.controller.loaded.name
        meta = str(screen.pane.last_answer().meta.render())
        assert meta == stats_line(stats, engine="mlx", model=name)  # a normal answer shows its figures too
        assert str(screen.speed.query_one(".spark-label").render()).startswith("mlx ")  # turns labelled by engine


async def test_the_memory_panel_is_not_repainted_when_nothing_changed():
    app = quiet_app(history=False)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.screen.query_one(MemoryGauges)
        sample = Gauges(engine_name="coreml", engine=MemoryReport(active_bytes=300 * 1024**2), power=FROZEN_GAUGES.power)
        panel.show(sample)
        painted = panel.repaints
        for _ in range(5):
            panel.show(Gauges(engine_name="coreml", engine=MemoryReport(active_bytes=300 * 1024**2), power=FROZEN_GAUGES.power))
        assert panel.repaints == painted
        panel.show(Gauges(engine_name="coreml", engine=MemoryReport(active_bytes=310 * 1024**2), power=FROZEN_GAUGES.power))
        assert panel.repaints == painted + 1
        await pilot.pause()
        shown = " ".join("\n".join(line.text for line in panel.render_lines(panel.region.reset_offset)).split())
        # Core ML's labels are whole, and a peak it has not measured yet says so
        assert "coreml active 310.0 MB" in shown and "coreml peak — until an answer" in shown


async def test_a_core_ml_context_shift_is_said_in_the_chat_with_how_much_was_kept(tiny_coreml_dir):
    pytest.importorskip("coremltools")
    from anechat.tui.widgets.chat_pane import Notice

    controller = ChatController(params=SamplingParams(max_tokens=4))
    app = quiet_app(model=str(tiny_coreml_dir), engine="coreml", controller=controller, history=False)
    app.ui_budget = 1.0
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: controller.session is not None and not app.screen.loading_model, limit_s=180)
        await send_and_wait(pilot, " ".join(["The quick brown fox jumps over the lazy dog."] * 20), limit_s=180)
        stats = controller.last_stats
        assert stats.dropped_tokens > 0
        kept = stats.prompt_tokens + stats.cached_tokens
        notes = [n.text for n in app.screen.query(Notice) if "did not fit the context" in n.text]
        assert notes == [f"the conversation did not fit the context: kept {kept} of {kept + stats.dropped_tokens} prompt tokens "
                         f"(its start and the most recent part); {stats.dropped_tokens} were left out"]
