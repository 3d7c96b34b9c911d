"""`/compare` in the chat: the same prompt answered by the loaded model and by its
version for the other engine, shown inline below the conversation, figures side by side.

The comparison itself is the harness's (:func:`anechat.compare.run_compare`: each
contestant loaded fresh, warmed up, timed on the prompt alone, then unloaded) and its
events go through the compare screen's feed and summary table; this module only lays
them out in the chat.
"""

from __future__ import annotations

import asyncio

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from anechat.compare import CompareReport, Contestant, run_compare
from anechat.engines.base import CancelToken, SamplingParams
from anechat.engines.threads import release_engine_thread
from anechat.safe_text import sanitize_for_terminal

from anechat.tui.compare.feed import CompareFeed, PaneState
from anechat.tui.compare.pane import figures_line
from anechat.tui.compare.summary import CompareSummary
from anechat.tui.errors import error_line
from anechat.tui.screens.model_picker import model_ref
from anechat.tui.switching import no_target_hint, switch_target

DRAIN_HZ = 4.0


def other_engine_target(loaded, entries: list):
    """(engine, catalog entry) of the loaded model's version on another engine (Core ML first
    from MLX, MLX first from anything else), or (preferred engine, None) when there is none."""
    engines = sorted({e for entry in entries for e in entry.engines if e != loaded.engine})
    preferred = "coreml" if loaded.engine == "mlx" else "mlx"
    engines.sort(key=lambda e: e != preferred)
    for engine in engines:
        target = switch_target(loaded.name, loaded.path, engine, entries)
        if target is not None:
            return engine, target
    return preferred, None


class CompareColumn(Vertical):
    DEFAULT_CSS = """
    CompareColumn { width: 1fr; height: auto; padding: 0 1; border-left: thick $secondary; }
    CompareColumn > .column-title { text-style: bold; }
    CompareColumn > .column-phase { color: $text-muted; }
    CompareColumn > .column-figures { color: $text-accent; }
    """

    def __init__(self, contestant: Contestant) -> None:
        super().__init__()
        self.contestant = contestant
        self.answer = ""
        self.title = Static(Text(sanitize_for_terminal(contestant.label)), classes="column-title")
        self.phase = Static("waiting", classes="column-phase")
        self.figures = Static("", classes="column-figures")
        self.body = Static("", classes="column-answer")

    def compose(self) -> ComposeResult:
        yield self.title
        yield self.phase
        yield self.figures
        yield self.body

    def show(self, state: PaneState) -> None:
        phase = state.phase
        self.phase.update(Text(phase.phase + (f": {phase.detail}" if phase.detail else "")))
        if state.stream.text:
            self.answer += state.stream.text
        if state.stream.final_text is not None:
            self.answer = state.stream.final_text
        self.body.update(Text(self.answer))
        if state.stream.figures is not None or state.stream.stats is not None:
            self.figures.update(Text(figures_line(state)))


class InlineComparison(Vertical):
    """One comparison in the chat pane: a heading, a column per contestant, the summary."""

    DEFAULT_CSS = """
    InlineComparison { height: auto; margin: 1 0 0 0; }
    InlineComparison > .compare-heading { color: $text-muted; }
    InlineComparison > Horizontal { height: auto; }
    InlineComparison > CompareSummary { display: none; }
    """

    def __init__(self, contestants: list[Contestant], prompt: str, params: SamplingParams, system_prompt: str) -> None:
        super().__init__(classes="message compare")
        self.contestants = contestants
        self.prompt = prompt
        self.params = params
        self.system_prompt = system_prompt
        self.columns = [CompareColumn(c) for c in contestants]
        self.summary = CompareSummary()
        self.feed = CompareFeed(len(contestants))
        self.cancel = CancelToken()
        self.report: CompareReport | None = None
        self.error: str | None = None
        self._timer = None

    @property
    def text(self) -> str:
        """What a search looks in: the prompt and both answers."""
        return "\n".join([self.prompt, *(c.answer for c in self.columns)])

    @property
    def running(self) -> bool:
        return not self.feed.finished or self._timer is not None

    def compose(self) -> ComposeResult:
        mode = "greedy" if self.params.greedy else f"temperature {self.params.temperature} (agreement means little)"
        shown = sanitize_for_terminal(" ".join(self.prompt.split()))
        shown = shown if len(shown) <= 60 else shown[:59] + "…"
        yield Static(Text(f"compare · “{shown}” · the prompt alone, each model loaded fresh · {mode} · Esc stops"), classes="compare-heading")
        with Horizontal():
            yield from self.columns
        yield self.summary

    def on_mount(self) -> None:
        self._timer = self.set_interval(1 / DRAIN_HZ, self._drain)
        self.run_worker(self._work, thread=True, group="inline-compare", exit_on_error=False)

    def on_unmount(self) -> None:
        self.cancel.cancel()  # the chat was cleared or the app closes: the harness stops at the next token

    def _work(self) -> None:
        """Thread worker: the whole comparison. Never raises; the outcome goes to the feed."""
        try:
            report = run_compare(
                self.contestants, self.prompt, params=self.params, system_prompt=self.system_prompt,
                on_event=self.feed, cancel=self.cancel,
            )
            self.feed.finish(report)
        except Exception as exc:
            self.feed.finish(None, error_line(exc))
        finally:
            release_engine_thread()

    def _drain(self) -> None:
        finished = self.feed.finished  # read first: a finished feed has every event in this drain
        for column, state in zip(self.columns, self.feed.drain()):
            if state is not None:
                column.show(state)
        if not finished:
            return
        self._timer.stop()
        self._timer = None
        self.report, self.error = self.feed.report, self.feed.error
        heading = self.query_one(".compare-heading", Static)
        if self.report is None:
            heading.update(Text(f"compare could not run: {self.error}"))
            return
        self.summary.display = True
        self.summary.show(self.report.summary(), self.report.greedy)
        heading.update(Text(f"compared in {self.report.wall_s:.1f} s · " + ("greedy" if self.report.greedy else "sampled")))

    def stop(self) -> bool:
        if not self.running:
            return False
        self.cancel.cancel()
        return True


class InlineCompare:
    """The chat screen's `/compare`: at most one comparison runs at a time."""

    def __init__(self, chat) -> None:
        self.chat = chat
        self.current: InlineComparison | None = None

    @property
    def running(self) -> bool:
        return self.current is not None and self.current.running

    def stop(self) -> bool:
        return self.current.stop() if self.current is not None else False

    async def start(self, text: str = "") -> InlineComparison | None:
        """Compare ``text`` (else the last message sent) on the loaded model's engine and the other one."""
        chat = self.chat
        busy = chat.busy_reason()
        if busy:
            chat.notify(busy, severity="warning")
            return None
        loaded = chat.controller.loaded
        if loaded is None or not chat.has_model():
            await chat.pane.add_notice("load a model first (Ctrl+O): /compare answers with it and its other-engine version", "error")
            return None
        prompt = text or next((m.content for m in reversed(chat.controller.messages) if m.role == "user"), "")
        if not prompt.strip():
            await chat.pane.add_notice("nothing to compare yet: send a message first, or type /compare TEXT", "error")
            return None
        try:
            entries = await asyncio.to_thread(chat.app.list_models)
        except Exception as exc:
            await chat.pane.add_notice(f"could not list models: {error_line(exc)}", "error")
            return None
        entries = list(entries)
        engine, target = other_engine_target(loaded, entries)
        if target is None:
            await chat.pane.add_notice(no_target_hint(loaded.name, loaded.path, engine, entries), "error")
            return None
        state = chat.controller.state
        contestants = [Contestant(loaded.ref or str(loaded.path), loaded.engine), Contestant(model_ref(target), engine)]
        self.current = InlineComparison(contestants, prompt, state.params, state.system_prompt)
        await chat.pane.mount(self.current)
        chat.pane.anchor()
        return self.current
