"""The streaming half of the main screen: one answer from send to final render.

The engine thread writes tokens into a :class:`~anechat.tui.turn.TurnBuffer`; a
timer here drains it at ``drain_hz``. Drawing shares the CPU and the GIL with the
engine, so each frame checks the UI thread's recent CPU use against the app's
``ui_budget``: cheap frames (the line being written, live stats) are drawn unless
far over budget; the costly ones (finished lines re-rendered as Markdown, which
grows the answer, re-lays out and repaints the pane) only under budget, yet at
least every MAX_MARKDOWN_WAIT_S. When the answer ends it is rendered whole once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from anechat.engines.base import CancelToken
from anechat.formatting import stats_line

from ..turn import CpuShare, Drained, TurnBuffer, clean_text, freeze_heap, run_turn, thaw_heap
from ..widgets.chat_input import ChatInput
from ..widgets.chat_pane import AssistantMessage

#: finished lines reach the Markdown view at least this often, whatever the budget
MAX_MARKDOWN_WAIT_S = 1.0


@dataclass
class ActiveTurn:
    answer: AssistantMessage
    buffer: TurnBuffer
    cancel: CancelToken
    last_stats_at: float = 0.0
    last_markdown_at: float = 0.0
    started_at: float = 0.0  # app clock
    cpu_share: CpuShare = field(default_factory=CpuShare)  # the UI thread's recent CPU use
    finished_at: float = 0.0
    frames: int = 0  # drains that drew something
    markdown_frames: int = 0  # of which re-rendered Markdown


class StreamingMixin:
    """Mixed into MainScreen (which owns ``turn``, ``speed``, ``status``, ``controller``)."""

    def start_turn(self, answer: AssistantMessage, text: str) -> ActiveTurn:
        turn = ActiveTurn(answer, TurnBuffer(clock=self.app.clock), CancelToken(), started_at=self.app.clock())
        freeze_heap()
        self.turn = turn
        self.turns_started += 1
        self.query_one(ChatInput).cursor_blink = False  # one less thing to repaint while it streams
        self.speed.start_turn()
        self.status.set_state("answering… Esc stops")
        self._drain_timer = self.set_interval(1.0 / self.app.drain_hz, self._drain)
        self.run_worker(self._generate(turn, text), group="turn", exclusive=True)
        return turn

    async def _generate(self, turn: ActiveTurn, text: str) -> None:
        await self.app.engine_thread.run(run_turn, self.controller, text, turn.cancel, turn.buffer)
        await self._drain()

    async def _drain(self) -> None:
        turn = self.turn
        if turn is None or self._draining:
            return
        now = self.app.clock()
        share = turn.cpu_share()
        if not turn.buffer.done and share > 2 * self.app.ui_budget:
            return  # the text waits in the buffer
        self._draining = True
        try:
            got = turn.buffer.drain()
            turn.frames += 1
            if got.text:
                turn.answer.write(clean_text(got.text))
            if got.done:
                await self._finish(turn, got)
                return
            since = now - turn.last_markdown_at
            if (since >= 1.0 / self.app.markdown_hz and share < self.app.ui_budget) or since >= MAX_MARKDOWN_WAIT_S:
                turn.last_markdown_at = now
                turn.markdown_frames += 1
                await turn.answer.flush()
            if now - turn.last_stats_at >= 1.0 / self.app.stats_hz:
                turn.last_stats_at = now
                self.speed.show_live(got.tokens, got.decode_tps, got.ttft_s)
        except Exception as exc:  # a drawing failure stops this answer, never the app
            self._abandon(turn, f"could not show the answer: {type(exc).__name__}: {exc}")
        finally:
            self._draining = False

    def _abandon(self, turn: ActiveTurn, why: str) -> None:
        turn.cancel.cancel()
        if self._drain_timer is not None:
            self._drain_timer.stop()
            self._drain_timer = None
        if self.turn is turn:
            self.turn = None
            self.turns_finished += 1
            thaw_heap()
        self.notify(why, severity="error", markup=False)

    async def _finish(self, turn: ActiveTurn, got: Drained) -> None:
        if self._drain_timer is not None:
            self._drain_timer.stop()
            self._drain_timer = None
        stats = got.stats
        final = clean_text(stats.text) if stats is not None and stats.text else None
        if stats is not None:
            self.speed.show_final(stats)
            reason = stats.finish_reason
            note = stats_line(stats) if reason != "stop" else ""
            kind = "error" if reason == "error" else "warning" if reason == "cancelled" else ""
            if reason == "cancelled":
                note = "stopped · " + stats_line(stats)
        else:
            self.speed.show_state("error")
            note, kind = f"error: {got.error or 'the engine stopped without a result'}", "error"
        if got.error and stats is not None and "error" not in note:
            note += f" — {got.error}"
        await turn.answer.finish(final, note, kind)
        turn.finished_at = self.app.clock()
        thaw_heap()
        self.query_one(ChatInput).cursor_blink = not self.app.low_motion
        self.last_turn = turn
        self.turn = None
        self.turns_finished += 1
        self._show_model()
        if stats is not None:
            self.status.set_context(stats.context_tokens)
