"""One contestant's pane: its name and runtime, live figures, and the streamed answer."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from anechat.compare import Contestant
from anechat.engines.base import Figures
from anechat.formatting import human_bytes

from anechat.tui.compare.feed import PaneState

_PHASE_TEXT = {
    "waiting": "waiting for its turn",
    "loading": "loading the model…",
    "warming": "warming up…",
    "ready": "ready",
    "generating": "answering…",
    "done": "done",
    "failed": "failed",
    "cancelled": "cancelled",
}


def figures_line(state: PaneState, rss: int | None = None) -> str:
    """``TTFT 120 ms · decode 45.1 tok/s · 37 tok · prefill … · peak 210 MB``: the engine's
    figures as its deltas carried them, then its final stats."""
    figures = state.stream.figures or Figures()
    stats = state.stream.stats
    started = state.stream.figures is not None
    parts = [f"TTFT {figures.ttft_s * 1000:.0f} ms" if started else "TTFT —"]
    parts.append(f"decode {figures.decode_tps:.1f} tok/s" if figures.decode_tps else "decode —")
    parts.append(f"{figures.generation_tokens} tok")
    if stats is not None:
        parts.append(f"prefill {figures.prefill_tps:.1f} tok/s")
        parts.append(f"peak {human_bytes(stats.peak_memory_bytes)}" if stats.peak_memory_bytes else "peak —")
    elif rss is not None:
        parts.append(f"process {human_bytes(rss)}")
    return " · ".join(parts)


class ContestantPane(Vertical):
    DEFAULT_CSS = """
    ContestantPane {
        width: 1fr;
        height: 1fr;
        border: round $primary 50%;
        padding: 0 1;
    }
    ContestantPane.-active { border: round $accent; }
    ContestantPane.-failed { border: round $error; }
    ContestantPane > .pane-title { text-style: bold; height: auto; }
    ContestantPane > .pane-phase { color: $text-muted; height: auto; }
    ContestantPane > .pane-figures { height: auto; color: $text-accent; }
    ContestantPane > VerticalScroll { height: 1fr; }
    """

    def __init__(self, index: int, contestant: Contestant) -> None:
        super().__init__(id=f"pane-{index}")
        self.index = index
        self.contestant = contestant
        self.answer = ""
        self.state = PaneState()
        self._stream: MarkdownStream | None = None

    def compose(self) -> ComposeResult:
        yield Static(self.contestant.label, classes="pane-title", markup=False)
        yield Static(_PHASE_TEXT["waiting"], classes="pane-phase", markup=False)
        yield Static("", classes="pane-figures", markup=False)
        with VerticalScroll():
            yield Markdown("")

    @property
    def markdown(self) -> Markdown:
        return self.query_one(Markdown)

    async def reset(self) -> None:
        await self._stop_stream()
        self.answer = ""
        self.state = PaneState()
        self.remove_class("-active", "-failed")
        await self.markdown.update("")
        self._show(None)

    async def apply(self, state: PaneState, rss: int | None = None) -> None:
        """Take one drained update: new text goes through the Markdown stream."""
        self.state = state
        text = state.stream.text
        if text:
            scroll = self.query_one(VerticalScroll)
            following = scroll.scroll_y >= scroll.max_scroll_y - 1  # at the end: keep up with the answer
            if self._stream is None:
                self._stream = Markdown.get_stream(self.markdown)
            self.answer += text
            await self._stream.write(text)
            if following:
                scroll.scroll_end(animate=False)
        phase = state.phase.phase
        self.set_class(phase == "generating", "-active")
        self.set_class(phase == "failed", "-failed")
        if phase in ("done", "failed", "cancelled"):
            await self._finish()
        self._show(rss)

    def show_rss(self, rss: int | None) -> None:
        if self.state.phase.phase == "generating":
            self._show(rss)

    def _show(self, rss: int | None) -> None:
        phase = self.state.phase
        text = _PHASE_TEXT.get(phase.phase, phase.phase)
        if phase.loaded is not None:
            text = f"{phase.loaded.runtime or phase.loaded.engine} · {text}"
        if phase.phase == "done" and phase.detail:
            text += f" ({phase.detail})"
        if phase.phase == "failed" and phase.detail:
            text += f": {phase.detail}"
        self.query_one(".pane-phase", Static).update(text)
        started = phase.phase in ("generating", "done", "cancelled") or self.state.stream.figures is not None
        self.query_one(".pane-figures", Static).update(figures_line(self.state, rss) if started else "")

    async def _finish(self) -> None:
        """Stop the stream and render the whole answer once."""
        await self._stop_stream()
        if self.answer:
            await self.markdown.update(self.answer)

    async def _stop_stream(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            await stream.stop()
