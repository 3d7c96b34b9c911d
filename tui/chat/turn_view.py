"""The chat screen's turn view: one answer streamed into the chat pane, from send to
its final render.

The engine thread writes tokens into a :class:`~anechat.tui.stream_buffer.StreamBuffer`; a
timer here drains it at ``drain_hz``. Every drain runs in the screen's message queue, one
at a time; the timer only queues them (a Textual timer runs its callback in its own task,
and ending the answer stops the timer: ``Timer.stop()`` cancels that task, which would cut
the answer's end short and leave it streaming for good). Drawing shares the CPU with the
engine, so each kind of frame is paced by what it costs (:mod:`anechat.tui.pacing`):

- the *text frame* shows new text as plain text after the Markdown, in rows the
  answer reserved ahead (no layout pass), with the live figures at ``stats_hz``;
- the *Markdown frame* hands finished lines to the ``MarkdownStream`` — a layout
  pass and a repaint of the pane — and reserves the rows the text will need until
  the next one. Text that outgrows its rows sooner gets more (one layout pass).

When the answer ends it is rendered whole once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from textual.screen import Screen

from anechat.engines.base import CancelToken, Figures
from anechat.formatting import dropped_line, stats_line
from anechat.safe_text import sanitize_for_terminal

from anechat.tui.pacing import Pacer
from anechat.tui.chat.turn import freeze_heap, run_turn, thaw_heap
from anechat.tui.stream_buffer import Drained, StreamBuffer
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.widgets.chat_pane import AssistantMessage, ChatPane
from anechat.tui.widgets.speed_panel import SpeedPanel
from anechat.tui.widgets.status_line import StatusLine, elapsed_text

#: the Markdown frame's share of the UI's budget (the rest is for text frames and gauges)
MARKDOWN_SHARE = 0.6
#: the longest wait between two Markdown frames, whatever they cost
MAX_MARKDOWN_GAP_S = 6.0
#: the longest wait between two text frames (low motion waits longer: its drain rate is lower)
MAX_TEXT_GAP_S = 1.0


@dataclass
class ActiveTurn:
    answer: AssistantMessage
    buffer: StreamBuffer
    cancel: CancelToken
    text_pacer: Pacer
    markdown_pacer: Pacer
    started_at: float = 0.0  # app clock
    first_text_at: float | None = None
    last_stats_at: float = 0.0
    finished_at: float = 0.0
    frames: int = 0  # drains that drew something
    markdown_frames: int = 0  # of which re-rendered Markdown
    grown: int = 0  # times the plain tail got more rows between Markdown frames
    figures_shown: bool = False  # the engine's figures have reached the speed panel

    def rows_per_s(self, now: float) -> float:
        """How fast the answer fills rows (as plain text), since its first text."""
        if self.first_text_at is None or now - self.first_text_at < 0.1:
            return 0.0
        return self.answer.rows_written() / (now - self.first_text_at)


def new_turn(app, answer: AssistantMessage) -> ActiveTurn:
    """An answer's pacing, from the app's rates and budget."""
    budget = app.ui_budget
    return ActiveTurn(
        answer,
        StreamBuffer(),
        CancelToken(),
        text_pacer=Pacer(budget * (1 - MARKDOWN_SHARE), 1.0 / app.drain_hz, max(MAX_TEXT_GAP_S, 1.0 / app.drain_hz), clock=app.clock),
        markdown_pacer=Pacer(budget * MARKDOWN_SHARE, 1.0 / app.markdown_hz, max(MAX_MARKDOWN_GAP_S, 1.0 / app.markdown_hz), clock=app.clock),
        started_at=app.clock(),
    )


class TurnView:
    """Streams the chat's answers into ``pane``, one at a time.

    ``screen`` runs the timer and the worker (and shows notifications); ``on_end`` is
    called when an answer has ended, however it ended.
    """

    def __init__(
        self,
        screen: Screen,
        pane: ChatPane,
        chat_input: ChatInput,
        speed: SpeedPanel,
        status: StatusLine,
        on_end: Callable[[], None],
    ) -> None:
        self._screen = screen
        self._pane = pane
        self._input = chat_input
        self._speed = speed
        self._status = status
        self._on_end = on_end
        self.turn: ActiveTurn | None = None  # the answer streaming now
        self.last_turn: ActiveTurn | None = None
        self.turns_started = self.turns_finished = 0  # answers begun / ended (any reason)
        self._drain_timer = None
        self._drain_queued = False  # a drain waits in the screen's queue

    @property
    def app(self):
        return self._screen.app

    @property
    def streaming(self) -> bool:
        return self.turn is not None

    async def start(self, text: str) -> ActiveTurn:
        """Show ``text`` as the person's message and stream the answer to it below."""
        self._pane.park_far()  # a long chat lays out like a short one while this streams
        await self._pane.add_user(text)
        answer = await self._pane.add_assistant()
        self._pane.anchor()
        turn = new_turn(self.app, answer)
        freeze_heap()
        self.turn = turn
        self.turns_started += 1
        self._input.cursor_blink = False  # one less thing to repaint while it streams
        self._speed.start_turn()
        self._status.begin("prefill")  # first on the line, counting, until the first token
        self._status.step("Esc stops")
        self._drain_timer = self._screen.set_interval(1.0 / self.app.drain_hz, self._queue_drain)
        self._screen.run_worker(self._generate(turn, text), group="turn", exclusive=True)
        return turn

    def stop(self) -> bool:
        """Ask the engine to stop the answer; False when none is streaming."""
        if self.turn is None:
            return False
        self.turn.cancel.cancel()
        self._status.end()
        self._status.set_state("stopping…")
        return True

    def close(self) -> None:
        """The screen goes away: stop the answer without drawing its end."""
        if self.turn is not None:
            self.turn.cancel.cancel()
            thaw_heap()

    async def _generate(self, turn: ActiveTurn, text: str) -> None:
        """The turn's worker: runs the answer on the engine thread, then shows its end."""
        app = self.app
        await app.engine_thread.run(run_turn, app.controller, text, turn.cancel, turn.buffer)
        self._screen.call_later(self.drain)  # in the screen's queue, like the timer's drains

    def _queue_drain(self) -> None:
        """The drain timer's tick: a drain in the screen's queue (at most one waiting there)."""
        if not self._drain_queued:
            self._drain_queued = self._screen.call_later(self._queued_drain)

    async def _queued_drain(self) -> None:
        self._drain_queued = False
        await self.drain()

    def _reserve_rows(self, turn: ActiveTurn, now: float) -> int:
        """Rows the text will need until the next Markdown frame (at the rate it comes),
        at most a fifth of the pane: blank rows under the text read as a stall."""
        coming = turn.rows_per_s(now) * turn.markdown_pacer.gap_s * 1.25
        most = max(2, self._pane.size.height // 5)
        return min(most, max(2, round(coming) + 1))

    async def drain(self) -> None:
        """Show what arrived since the last frame, when its frame is due (or the end).

        Runs in the screen's message queue only, so two drains never overlap."""
        turn = self.turn
        if turn is None:
            return
        now = self.app.clock()
        text_pacer, md_pacer = turn.text_pacer, turn.markdown_pacer
        # the last frame's cost is known now: its layout and repaint have run since
        text_pacer.observe()
        md_pacer.observe()
        done = turn.buffer.done
        if not done and not text_pacer.due(now):
            return  # the text waits in the buffer
        try:
            got = turn.buffer.drain()
            if got.done:
                await self._finish(turn, got)
                return
            turn.frames += 1
            outgrown = False
            if got.text:
                if turn.first_text_at is None:
                    turn.first_text_at = now
                outgrown = turn.answer.write(got.text)
            if md_pacer.due(now):
                turn.markdown_frames += 1
                md_pacer.drew(now)
                self._pane.park_far()  # a long answer lays out like a short one
                await turn.answer.flush(self._reserve_rows(turn, now))
            else:
                text_pacer.drew(now)
                self._screen.call_after_refresh(text_pacer.observe)  # its cost: the frame and its repaint
                if outgrown:  # more rows for the tail: a layout pass, cheaper than a Markdown frame
                    turn.grown += 1
                    turn.answer.reserve(self._reserve_rows(turn, now))
            first_figures = got.figures is not None and not turn.figures_shown
            if first_figures or now - turn.last_stats_at >= 1.0 / self.app.stats_hz:
                turn.last_stats_at = now
                self._show_live(turn, got.figures, now)
        except Exception as exc:  # a drawing failure stops this answer, never the app
            self._abandon(turn, f"could not show the answer: {type(exc).__name__}: {exc}")

    def _show_live(self, turn: ActiveTurn, figures: Figures | None, now: float) -> None:
        """The engine's figures as they stand (prefill and token counts as soon as prefill
        ends), the context gauge with them; before the first token, how long it has waited."""
        if figures is None:
            self._speed.show_waiting(elapsed_text(now - turn.started_at))
            return
        self._speed.show_live(figures)
        self._status.set_context(figures.cached_tokens + figures.prompt_tokens + figures.generation_tokens)
        if not turn.figures_shown:
            turn.figures_shown = True
            self._status.end()
            self._status.set_state("answering… Esc stops")

    def _stop_timer(self) -> None:
        if self._drain_timer is not None:
            self._drain_timer.stop()
            self._drain_timer = None

    def _abandon(self, turn: ActiveTurn, why: str) -> None:
        turn.cancel.cancel()
        self._stop_timer()
        self._status.end()
        if self.turn is turn:
            self.turn = None
            self.turns_finished += 1
            thaw_heap()
        self._screen.notify(why, severity="error", markup=False)

    async def _finish(self, turn: ActiveTurn, got: Drained) -> None:
        self._stop_timer()
        self._status.end()
        stats = got.stats
        final = got.final_text
        if stats is not None:
            loaded = self.app.controller.loaded
            engine = loaded.engine if loaded else None
            self._speed.show_final(stats, engine)
            reason = stats.finish_reason
            # every answer ends with its figures and who wrote it
            note = stats_line(stats, engine=engine, model=sanitize_for_terminal(loaded.name) if loaded else None)
            kind = "error" if reason == "error" else "warning" if reason == "cancelled" else ""
            if reason == "cancelled":
                note = "stopped · " + note
        else:
            self._speed.show_state("error")
            note, kind = f"error: {got.error or 'the engine stopped without a result'}", "error"
        if got.error and stats is not None and "error" not in note:
            note += f" — {got.error}"
        await turn.answer.finish(final, note, kind)
        if stats is not None and stats.dropped_tokens:  # a context shift: the answer saw part of the chat
            await self._pane.add_notice(dropped_line(stats), "warning")
        turn.finished_at = self.app.clock()
        thaw_heap()
        self._input.cursor_blink = not self.app.low_motion
        self.last_turn = turn
        self.turn = None
        self.turns_finished += 1
        self._on_end()
        if warning := self._screen.controller.take_history_warning():  # the history could not be saved: once
            self._screen.app.show_warning(warning)
        if stats is not None:
            self._status.set_context(stats.context_tokens)
