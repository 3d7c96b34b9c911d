"""The figures the app shows come from the engine: the stream buffer hands on the engine's
own figures (speed panel, compare panes), and the memory gauges read the engine's
memory snapshot (anechat.metrics.gauges) — nothing is measured or recomputed in the UI."""

from __future__ import annotations

import asyncio
import sys

import psutil
import pytest

from anechat.chat.controller import ChatController
from anechat.engines.base import Figures, GenerationStats, MemoryReport, SamplingParams, TextDelta
from anechat.engines.registry import availability
from anechat.metrics.gauges import GaugeSampler, Gauges, PowerReading, folder_size, read_power
from anechat.tui.widgets.memory_gauges import MemoryGauges, used_of_total
from anechat.tui.stream_buffer import StreamBuffer
from anechat.tui.widgets.speed_panel import SpeedPanel
from tui_support import PacedController, quiet_app, send_and_wait, wait_for

pytestmark = pytest.mark.anyio


def test_a_sample_reads_this_process_and_the_system():
    g = GaugeSampler().sample()
    assert g.process_rss and abs(g.process_rss - psutil.Process().memory_info().rss) < 64 * 1024**2
    assert g.system_total == psutil.virtual_memory().total
    assert 0 < g.system_used <= g.system_total
    assert g.engine is None and g.model_disk_bytes is None


def test_the_model_size_on_disk_is_the_sum_of_its_files(tiny_model_dir):
    expected = sum(p.stat().st_size for p in tiny_model_dir.iterdir() if p.is_file())
    assert folder_size(tiny_model_dir) == expected
    assert GaugeSampler().sample(model_path=tiny_model_dir).model_disk_bytes == expected
    assert folder_size(tiny_model_dir / "missing") is None


@pytest.mark.skipif(sys.platform == "darwin", reason="Linux/Windows wording")
def test_power_is_reported_as_unavailable_off_macos_never_made_up():
    power = read_power()
    assert not power.available and power.watts == {} and "macOS" in power.reason


def test_used_of_total_shares_one_unit():
    assert used_of_total(3 * 1024**3, 24 * 1024**3) == "3.0/24.0 GB"
    assert used_of_total(512 * 1024**2, 900 * 1024**2) == "512.0/900.0 MB"


async def test_the_panel_shows_engine_figures_and_dashes_for_unknowns():
    sample = Gauges(
        process_rss=300 * 1024**2,
        system_used=8 * 1024**3,
        system_total=16 * 1024**3,
        engine_name="mlx",
        engine=MemoryReport(active_bytes=200 * 1024**2, peak_bytes=250 * 1024**2, cache_bytes=None),
        model_disk_bytes=None,
        power=PowerReading(True, "IOReport", {"CPU": 1.5, "ANE": 0.4}),
    )
    app = quiet_app()
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.screen.query_one(MemoryGauges)
        panel.show(sample)
        await pilot.pause()
        text = "\n".join(line.text for line in app.screen.query_one(MemoryGauges).render_lines(panel.region.reset_offset))
        flat = " ".join(text.split())
        assert "process 300.0 MB" in flat and "8.0/16.0 GB" in flat
        assert "mlx active 200.0 MB" in flat and "mlx peak 250.0 MB" in flat
        assert "mlx cache" not in flat  # unknown figures are not invented
        assert "on disk —" in flat
        assert "CPU power 1.50 W" in flat and "ANE power 0.40 W" in flat  # from IOReport, one row each
        assert "GPU power" not in flat  # a part without a counter is left out, not shown as 0 W


# -- the engine's figures, shown as they come ------------------------------------------

needs_mlx = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")


def test_the_stream_buffer_hands_on_the_engines_figures_unchanged():
    buffer = StreamBuffer()
    assert buffer.drain().figures is None  # no token yet: no figures, none made up
    live = Figures(prompt_tokens=9, cached_tokens=3, generation_tokens=2, ttft_s=0.125, prefill_tps=72.0, decode_tps=31.5)
    buffer.push(TextDelta("ok\x1b[2J", (5,), live))
    got = buffer.drain()
    assert got.figures is live and got.text == "ok␛[2J" and not got.done  # control characters shown, inert
    final = GenerationStats(prompt_tokens=9, generation_tokens=3, ttft_s=0.125, prefill_tps=72.0, decode_tps=30.0,
                            peak_memory_bytes=1, finish_reason="length", cached_tokens=3, text="ok\x1b[2J!")
    buffer.push(final)
    buffer.finish()
    got = buffer.drain()
    assert got.done and got.stats is final and got.figures == final.figures and got.text == ""
    assert got.final_text == "ok␛[2J!"


@needs_mlx
async def test_the_speed_panel_shows_the_engines_figures_live_and_the_same_at_the_end(tiny_model_dir):
    controller = PacedController(params=SamplingParams(max_tokens=100))
    app = quiet_app(model=str(tiny_model_dir), engine="mlx", controller=controller)
    app.ui_budget = 1.0  # draw every frame
    async with app.run_test(size=(120, 40)) as pilot:

        def ready() -> bool:
            """the model to load"""
            return controller.session is not None and not app.screen.loading_model

        await wait_for(pilot, ready, limit_s=120)
        speed = app.screen.query_one(SpeedPanel)
        shown = []

        async def watch() -> None:
            while True:
                if speed.state == "generating…":
                    shown.append((speed.ttft_s, speed.prefill_tps, speed.tokens_in, speed.tokens_out))
                await asyncio.sleep(0.002)

        watcher = asyncio.create_task(watch())
        await send_and_wait(pilot, "Tell me a story")
        watcher.cancel()
        stats = controller.last_stats
        assert shown, "no live figures were shown"
        # TTFT and prefill are the engine's from the first token on: live equals final
        assert {row[:3] for row in shown} == {(stats.ttft_s, stats.prefill_tps, stats.prompt_tokens)}
        assert all(0 < row[3] <= stats.generation_tokens for row in shown)
        assert (speed.ttft_s, speed.decode_tps, speed.tokens_out) == (stats.ttft_s, stats.decode_tps, stats.generation_tokens)


def test_a_gauges_sample_reads_the_engines_memory_snapshot(tiny_model_dir):
    """The sampler runs in a worker thread: it takes the snapshot, it never asks the backend."""
    from anechat.engines.registry import create_engine

    if not availability("mlx").ok:
        pytest.skip("the MLX engine is not available here")
    engine = create_engine("mlx")
    engine.load(tiny_model_dir)
    try:
        snapshot = engine.memory()
        sample = GaugeSampler().sample(engine, tiny_model_dir)
        assert sample.engine is snapshot and sample.engine_name == "mlx"
        assert sample.engine.model_bytes and sample.model_disk_bytes
    finally:
        engine.unload()
