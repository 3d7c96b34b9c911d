"""The split-view compare screen: one pane per contestant, then a summary row.

Open it from any running app with ``app.push_screen(CompareScreen(contestants, prompt))``
(the command palette's "compare the current prompt on another engine or model");
`anechat compare` shows it in :class:`~anechat.tui.compare.app.CompareApp`.

The comparison runs in one thread worker (:func:`anechat.compare.run_compare`);
its events land in a :class:`CompareFeed` that a timer drains at ``DRAIN_HZ``.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from anechat.compare import CompareReport, Contestant, run_compare
from anechat.engines.base import CancelToken, SamplingParams
from anechat.engines.threads import release_engine_thread
from anechat.metrics.gauges import process_rss

from anechat.tui.compare.feed import CompareFeed
from anechat.tui.compare.pane import ContestantPane
from anechat.tui.compare.summary import MEMORY_FOOTNOTE, CompareSummary
from anechat.tui.errors import error_line


class CompareScreen(Screen[CompareReport | None]):
    """Dismissed with the last :class:`CompareReport` (None if nothing ran)."""

    DRAIN_HZ = 8
    BINDINGS = [
        Binding("escape", "stop_or_close", "Stop / close"),
        Binding("ctrl+r", "rerun", "Run again"),
    ]
    DEFAULT_CSS = """
    CompareScreen { layout: vertical; }
    CompareScreen > #compare-title { height: auto; padding: 0 1; text-style: bold; }
    CompareScreen > #compare-prompt { height: auto; }
    CompareScreen > #compare-panes { height: 1fr; }
    CompareScreen > #compare-status { height: auto; padding: 0 1; color: $text-muted; }
    """

    class Finished(Message):
        """Posted when a comparison ends (``report`` None when it could not run)."""

        def __init__(self, report: CompareReport | None, error: str | None) -> None:
            super().__init__()
            self.report = report
            self.error = error

    def __init__(
        self,
        contestants: Sequence[Contestant],
        prompt: str | None = None,
        *,
        params: SamplingParams | None = None,
        system_prompt: str = "",
        concurrent: bool = False,
        warmup: bool = True,
    ) -> None:
        super().__init__()
        if not contestants:
            raise ValueError("CompareScreen needs at least one contestant")
        self.contestants = list(contestants)
        self.prompt = prompt or ""
        self.params = (params or SamplingParams()).validate()
        self.system_prompt = system_prompt
        self.concurrent = concurrent
        self.warmup = warmup
        self.report: CompareReport | None = None
        self._feed: CompareFeed | None = None
        self._cancel: CancelToken | None = None
        self._ticks = 0

    @property
    def running(self) -> bool:
        return self._feed is not None and not self._feed.finished

    def compose(self) -> ComposeResult:
        mode = "concurrent" if self.concurrent else "sequential"
        sampling = "greedy" if self.params.greedy else f"temperature {self.params.temperature}"
        yield Static(f"Compare · {len(self.contestants)} contestants · {mode} · {sampling} · up to {self.params.max_tokens} tokens", id="compare-title", markup=False)
        yield Input(self.prompt, placeholder="Prompt to compare — Enter runs it", id="compare-prompt")
        with Horizontal(id="compare-panes"):
            for i, c in enumerate(self.contestants):
                yield ContestantPane(i, c)
        summary = CompareSummary(id="compare-summary")
        summary.display = False
        yield summary
        yield Static("", id="compare-status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1 / self.DRAIN_HZ, self._drain)
        if self.prompt.strip():
            self.call_after_refresh(self.start, self.prompt)
        else:
            self.query_one(Input).focus()

    def on_unmount(self) -> None:
        if self._cancel is not None:
            self._cancel.cancel()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.start(event.value)

    async def start(self, prompt: str) -> None:
        """Run the comparison on ``prompt`` (ignored while one is running)."""
        if self.running:
            return
        if not prompt.strip():
            self._status("type a prompt first")
            return
        self.prompt = prompt
        for pane in self.query(ContestantPane):
            await pane.reset()
        self.query_one(CompareSummary).display = False
        self.report = None
        self._feed = CompareFeed(len(self.contestants))
        self._cancel = CancelToken()
        self._status("running… (Esc stops)")
        self.run_worker(partial(self._work, prompt, self._feed, self._cancel), thread=True, group="compare", exit_on_error=False)

    def _work(self, prompt: str, feed: CompareFeed, cancel: CancelToken) -> None:
        """Thread worker: the whole comparison. Never raises; the outcome goes to the feed."""
        try:
            report = run_compare(
                self.contestants,
                prompt,
                params=self.params,
                system_prompt=self.system_prompt,
                concurrent=self.concurrent,
                on_event=feed,
                cancel=cancel,
                warmup=self.warmup,
            )
            feed.finish(report)
        except Exception as exc:  # one line in the app, never a crash
            feed.finish(None, error_line(exc))
        finally:
            release_engine_thread()

    async def _drain(self) -> None:
        feed = self._feed
        if feed is None:
            return
        finished = feed.finished  # read first: a finished feed has every event in this drain
        self._ticks += 1
        rss = process_rss() if self._ticks % 4 == 0 and not finished else None
        for pane, state in zip(self.query(ContestantPane), feed.drain()):
            if state is not None:
                await pane.apply(state, rss)
            elif rss is not None:
                pane.show_rss(rss)
        if finished:
            self._feed = None
            self._show_outcome(feed)

    def _show_outcome(self, feed: CompareFeed) -> None:
        self.report = feed.report
        if feed.report is None:
            self._status(f"could not run: {feed.error}")
        else:
            summary = self.query_one(CompareSummary)
            rows = feed.report.summary()
            footnote = any(not r.memory_like_for_like and r.memory_ratio is not None for r in rows)
            summary.show(rows, feed.report.greedy)
            summary.display = True
            status = f"done in {feed.report.wall_s:.1f} s · Ctrl+R runs again · Esc closes"
            self._status(status + ("\n" + MEMORY_FOOTNOTE if footnote else ""))
        self.post_message(self.Finished(feed.report, feed.error))

    def _status(self, text: str) -> None:
        self.query_one("#compare-status", Static).update(text)

    def action_stop_or_close(self) -> None:
        if self.running and self._cancel is not None:
            self._cancel.cancel()
            self._status("stopping…")
        else:
            self.dismiss(self.report)

    async def action_rerun(self) -> None:
        await self.start(self.query_one(Input).value)
