"""Memory gauges: this process, the system, the engine's own report, the model on disk,
and power where it can be read (never a made-up ANE figure)."""

from __future__ import annotations

from rich.text import Text

from anechat.formatting import human_bytes
from anechat.metrics.gauges import Gauges
from anechat.safe_text import sanitize_for_terminal

from anechat.tui.widgets.figures import Figures

BAR_WIDTH = 8


def bar(fraction: float | None, width: int = BAR_WIDTH) -> Text:
    if fraction is None:
        return Text("░" * width, style="dim")
    filled = round(max(0.0, min(1.0, fraction)) * width)
    style = "red" if fraction > 0.9 else "yellow" if fraction > 0.75 else "green"
    return Text("█" * filled, style=style) + Text("░" * (width - filled), style="dim")


def used_of_total(used: int | None, total: int) -> str:
    """'3.1/24.0 GB': both figures in the total's unit."""
    unit, div = next(((u, d) for u, d in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2)) if total >= d), ("KB", 1024))
    return f"{(used or 0) / div:.1f}/{total / div:.1f} {unit}"


def engine_lines(gauges: Gauges) -> list[tuple[str, str | Text]]:
    report = gauges.engine
    if report is None:
        return [("engine", "—")]
    name = gauges.engine_name or "engine"
    rows: list[tuple[str, str | Text]] = []
    if report.active_bytes is not None or report.peak_bytes is not None:
        rows.append((f"{name} active", human_bytes(report.active_bytes)))
        # an engine that measures its peak per answer has none before the first one
        peak = human_bytes(report.peak_bytes) if report.peak_bytes is not None else Text("— until an answer", style="dim")
        rows.append((f"{name} peak", peak))
        if report.cache_bytes is not None:
            rows.append((f"{name} cache", human_bytes(report.cache_bytes)))
    elif report.cache_bytes is not None:
        rows.append((f"{name} cache", human_bytes(report.cache_bytes)))
    if report.model_bytes is not None:
        rows.append((f"{name} model", human_bytes(report.model_bytes)))
    rows.extend(rank_lines(report.details.get("ranks") or []))
    return rows or [(name, "—")]


def rank_lines(ranks: list[dict]) -> list[tuple[str, str | Text]]:
    """A distributed MLX session: each rank's memory (gathered from the ranks) and the weights it holds."""
    return [
        (sanitize_for_terminal(f"rank {i} {r.get('host', '')}".rstrip()), f"{human_bytes(r.get('active'))} · weights {human_bytes(r.get('weights'))}")
        for i, r in enumerate(ranks)
    ]


class MemoryGauges(Figures):
    """Shows one :class:`Gauges` sample; the screen feeds it from a worker at 1-4 Hz."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="side-panel")
        self.border_title = "Memory"
        self.gauges: Gauges | None = None

    def on_mount(self) -> None:
        self.show(None)

    def show(self, gauges: Gauges | None) -> None:
        self.gauges = gauges
        g = gauges or Gauges()
        rows: list[tuple[str, str | Text]] = [("process", human_bytes(g.process_rss))]
        sys_text = bar(g.system_fraction)
        if g.system_total:
            sys_text += Text(f" {used_of_total(g.system_used, g.system_total)}")
        rows.append(("system", sys_text))
        rows.extend(engine_lines(g))
        rows.append(("on disk", human_bytes(g.model_disk_bytes)))
        if g.power.available:  # one row per part: the side panel is narrow
            rows.extend((f"{part} power", f"{watts:.2f} W") for part, watts in g.power.watts.items())
        else:
            rows.append(("power", Text(g.power.reason.removeprefix("power: "), style="dim")))
        self.show_rows(rows)
