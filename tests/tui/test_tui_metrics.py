"""The memory gauges' sampler (anechat.metrics.gauges) and how the panel shows a sample."""

from __future__ import annotations

import sys

import psutil
import pytest

from anechat.engines.base import MemoryReport
from anechat.metrics.gauges import GaugeSampler, Gauges, PowerReading, folder_size, read_power
from anechat.tui.widgets.memory_gauges import MemoryGauges, used_of_total
from tui_support import quiet_app

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
