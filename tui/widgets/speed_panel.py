"""Live speed: the engine's own figures while tokens arrive and at the end (the same
figures: what the deltas carried, then the final stats), and a sparkline of decode
tok/s over the session's turns. Nothing is measured here."""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from anechat.engines.base import Figures, GenerationStats

from anechat.tui.widgets.figures import Figures


def _fig(value: float | None, fmt: str, unit: str) -> str:
    return "—" if value is None else f"{value:{fmt}} {unit}"


class SpeedPanel(Vertical):
    """Shows :class:`Figures` from the engine (``TextDelta.figures``, ``GenerationStats.figures``)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="side-panel")
        self.border_title = "Speed"
        self.decode_tps: float | None = None
        self.ttft_s: float | None = None
        self.prefill_tps: float | None = None
        self.tokens_in: int | None = None
        self.cached_in: int = 0
        self.tokens_out: int | None = None
        self.state = ""
        self.history: list[float] = []  # decode tok/s per turn
        self.engines: list[str] = []  # the engine of each of those turns

    def compose(self):
        self.figures = Figures(classes="figures")
        yield self.figures
        yield Static(self._spark_label(), classes="spark-label")
        yield Sparkline([], classes="spark")

    def _spark_label(self) -> Text:
        """The last turns' decode tok/s, each labelled by its engine: 'mlx 45.1 · coreml 30.2'."""
        if not self.history:
            return Text("decode tok/s per turn", style="dim")
        turns = list(zip(self.engines, self.history))[-3:]
        return Text(" · ".join(f"{engine} {tps:.1f}".strip() for engine, tps in turns), style="dim", no_wrap=True, overflow="ellipsis")

    def on_mount(self) -> None:
        self._refresh_figures()

    def _rows(self) -> list[tuple[str, str | Text]]:
        tokens_in = "—" if self.tokens_in is None else f"{self.tokens_in}" + (f" (+{self.cached_in} cached)" if self.cached_in else "")
        rows = [
            ("decode", Text(_fig(self.decode_tps, ".1f", "tok/s"), style="bold")),
            ("TTFT", _fig(self.ttft_s, ".2f", "s")),
            ("prefill", _fig(self.prefill_tps, ".1f", "tok/s")),
            ("in", tokens_in),
            ("out", "—" if self.tokens_out is None else str(self.tokens_out)),
        ]
        rows.append(("", Text(self.state, style="italic dim")))
        return rows

    def _refresh_figures(self) -> None:
        self.figures.show_rows(self._rows())

    def start_turn(self) -> None:
        self.decode_tps = self.ttft_s = self.prefill_tps = None
        self.tokens_in = None
        self.cached_in = 0
        self.tokens_out = 0
        self.state = "prefill…"
        self._refresh_figures()

    def _take(self, figures: Figures) -> None:
        self.decode_tps = figures.decode_tps if figures.generation_tokens > 1 else None
        self.ttft_s = figures.ttft_s
        self.prefill_tps = figures.prefill_tps
        self.tokens_in = figures.prompt_tokens
        self.cached_in = figures.cached_tokens
        self.tokens_out = figures.generation_tokens

    def show_live(self, figures: Figures | None) -> None:
        """The engine's figures as of its latest token (None: no token yet)."""
        if figures is None:
            self.state = "prefill…"
        else:
            self._take(figures)
            self.state = "generating…"
        self._refresh_figures()

    def show_waiting(self, waited: str) -> None:
        """No token yet: the prompt is being prefilled (the engine reports nothing before its
        first token, so this says only how long it has taken)."""
        self.state = f"prefill… {waited}"
        self._refresh_figures()

    def show_final(self, stats: GenerationStats, engine: str | None = None) -> None:
        self._take(stats.figures)
        self.state = "" if stats.finish_reason in ("stop", "length") else stats.finish_reason
        if stats.generation_tokens > 1 and stats.decode_tps > 0:
            self.history.append(stats.decode_tps)
            self.engines.append(engine or "")
            spark = self.query_one(".spark", Sparkline)
            spark.data = list(self.history)
            spark.display = len(self.history) > 1  # one point would draw as a solid bar
            self.query_one(".spark-label", Static).update(self._spark_label())
        self._refresh_figures()

    def show_state(self, state: str) -> None:
        self.state = state
        self._refresh_figures()
