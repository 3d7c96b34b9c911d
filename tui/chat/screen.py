"""The main screen: chat pane and input on the left, speed and memory on the right,
status line and footer below. Every action has a key, a footer entry and a
command palette entry (tui/chat/actions.py). The screen owns a turn view (an answer
streaming into the pane), a session opener and the compare entry; loading a model
and switching engines are in model_loading.py. ``busy_reason`` is the one guard for
"the chat cannot start something else now"."""

from __future__ import annotations

import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer
from textual.worker import get_current_worker

from anechat.safe_text import sanitize_for_terminal

from anechat.tui.messages import GaugesSampled
from anechat.tui.chat.actions import ACTIONS, IN_FOOTER, action_id
from anechat.tui.chat.answer_label import label_answer
from anechat.tui.chat.compare_entry import CompareEntry
from anechat.tui.chat.features import ChatFeatures
from anechat.tui.chat.model_loading import ModelLoading
from anechat.tui.chat.session_open import SessionOpener
from anechat.tui.chat.turn_view import TurnView
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.widgets.chat_pane import ChatPane, Notice
from anechat.tui.widgets.figures_bar import FiguresBar
from anechat.tui.widgets.memory_gauges import MemoryGauges
from anechat.tui.widgets.speed_panel import SpeedPanel
from anechat.tui.widgets.status_line import StatusLine
from anechat.tui.screens.code_blocks import CodeBlockPicker, code_blocks
from anechat.tui.screens.models import ModelsScreen
from anechat.tui.screens.params import ParamsResult, ParamsScreen
from anechat.tui.screens.sessions import SessionsScreen

WELCOME = "anechat — local models, live speed and memory. Ctrl+O picks a model · Ctrl+P lists every action."
#: below this width the speed and memory panels start hidden (Ctrl+T shows them)
NARROW = 90


class MainScreen(ModelLoading, ChatFeatures):
    BINDINGS = [
        Binding(key, action, label, show=action in IN_FOOTER, priority=key != "escape", id=action_id(action))
        for key, action, label, *_ in ACTIONS
    ]

    def __init__(self) -> None:
        super().__init__()
        self.loading_model = False
        self.sessions = SessionOpener(self)
        self.compare = CompareEntry(self)
        self._gauges_stop = threading.Event()
        self._side_choice: bool | None = None  # set once the person toggles the panels
        self.pending: str | None = None  # a message sent before a model was ready: sent once one is

    # -- layout -------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        # kept as attributes: the streaming frames reach them without a DOM query
        self.pane = ChatPane(id="chat")
        self.chat_input = ChatInput(id="input", blink=not self.app.low_motion)
        self.speed = SpeedPanel(id="speed")
        self.memory = MemoryGauges(id="memory")
        self.status = StatusLine(id="status")
        self.figures_bar = FiguresBar(self.speed, self.status, id="figures-bar")
        self.turn_view = TurnView(self, self.pane, self.chat_input, self.speed, self.status, on_end=self.show_model)
        with Horizontal(id="body"):
            with Vertical(id="chat-column"):
                yield self.pane
                yield self.chat_input
            with Vertical(id="side"):
                yield self.speed
                yield self.memory
        yield self.figures_bar
        yield self.status
        yield Footer(compact=True)

    @property
    def controller(self):
        return self.app.controller

    def on_mount(self) -> None:
        self.call_after_refresh(self.app.mark_painted)
        self.query_one(ChatInput).focus()
        # mounted now, so they come before anything a load or the history adds
        self.pane.mount(Notice(WELCOME, "info"), *(Notice(line, "warning") for line in self.app.startup_warnings))
        if self.app.frozen_gauges is not None:
            self.query_one(MemoryGauges).show(self.app.frozen_gauges)
        else:
            self.sample_gauges()
        if self.app.model_ref:
            self.load_model(self.app.model_ref, self.app.engine_name)

    def on_screen_resume(self) -> None:
        """Back from any dialog or screen: typing goes to the message box again."""
        self.chat_input.focus()

    def on_resize(self, event) -> None:
        if self._side_choice is None:
            self._show_side(event.size.width >= NARROW)

    def _show_side(self, shown: bool) -> None:
        """The side panels, or (compact layout) the one-line figures bar in their place."""
        self.query_one("#side").display = shown
        self.figures_bar.display = not shown
        self.figures_bar.refresh_figures()

    def on_unmount(self) -> None:
        self._gauges_stop.set()
        self.turn_view.close()

    # -- gauges (worker thread, bounded rate) -----------------------------------------
    @work(thread=True, exclusive=True, group="gauges")
    def sample_gauges(self) -> None:
        worker = get_current_worker()
        while not worker.is_cancelled and not self._gauges_stop.is_set():
            period = 1.0 / (self.app.gauges_hz if not self.turn_view.streaming else min(1.0, self.app.gauges_hz))
            ctrl = self.controller
            loaded = ctrl.loaded
            gauges = self.app.sampler.sample(ctrl.engine if loaded else None, loaded.path if loaded else None)
            self.post_message(GaugesSampled(gauges))
            self._gauges_stop.wait(period)

    def on_gauges_sampled(self, message: GaugesSampled) -> None:
        self.memory.show(message.gauges)

    def busy_reason(self) -> str | None:
        """Why the chat cannot start anything else now (an answer, a load, a session); None when it can."""
        if self.turn_view.streaming:
            return "an answer is streaming: Esc stops it first"
        if self.loading_model:
            return "a model is loading: wait for it to finish"
        if self.inline_compare.running:
            return "a comparison is running: Esc stops it"
        return None

    def _refuse_if_busy(self) -> bool:
        busy = self.busy_reason()
        if busy:
            self.notify(busy, severity="warning")
        return busy is not None

    # -- a turn -------------------------------------------------------------------------
    @on(ChatInput.Submitted)
    async def _submitted(self, event: ChatInput.Submitted) -> None:
        await self.slash.submitted(event.text)  # a slash command, an edited message or a message

    async def send(self, text: str) -> bool:
        """Start an answer to ``text``; False (with a message) when it cannot start."""
        if not text.strip():
            self.notify("the message is empty: type something first", severity="warning")
            return False
        if not self.loading_model and self._refuse_if_busy():  # a message sent while loading is kept
            return False
        if self.loading_model or not self.has_model():
            await self._keep(text)
            return False
        turn = await self.turn_view.start(text)
        await label_answer(turn.answer, self.controller.loaded)
        return True

    # -- actions ------------------------------------------------------------------------
    def action_stop(self) -> None:
        if self.app.screen.query("HelpPanel"):  # Esc closes the keys panel first
            self.app.action_hide_help_panel()
            return
        self.turn_view.stop() or self.inline_compare.stop() or self.editing.cancel()

    def action_manage_models(self) -> None:
        ModelsScreen.open(self.app, self)

    async def action_new_chat(self) -> None:
        if self._refuse_if_busy():
            return
        self.controller.new_chat()
        await self.pane.clear()
        self.speed.show_state("")
        self.show_model()
        self.query_one(ChatInput).focus()

    def action_sessions(self) -> None:
        if self._refuse_if_busy():
            return
        screen = SessionsScreen(self.app.history_store, self.controller.session_id)
        self.app.push_screen(screen, self.sessions.apply)

    def action_settings(self) -> None:
        state = self.controller.state

        def saved(result: ParamsResult | None) -> None:
            if result is None:
                return
            self.controller.set_system_prompt(result.system_prompt)
            self.controller.set_params(result.params)
            self.notify("settings saved for this chat")

        self.app.push_screen(ParamsScreen(state.system_prompt, state.params, self.controller.sampling_source), saved)

    def _last_answer_text(self) -> str:
        for message in reversed(self.controller.messages):
            if message.role == "assistant" and message.content:
                return sanitize_for_terminal(message.content)
        answer = self.pane.last_answer()
        return answer.text if answer is not None else ""

    def action_copy_answer(self) -> None:
        text = self._last_answer_text()
        if not text:
            self.notify("no answer to copy yet", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"copied the last answer ({len(text)} characters)")

    def action_copy_code(self) -> None:
        blocks = code_blocks(self._last_answer_text())
        if not blocks:
            self.notify("the last answer has no code block", severity="warning")
            return

        def copy(code: str | None) -> None:
            if code is not None:
                self.app.copy_to_clipboard(code)
                self.notify(f"copied a code block ({len(code.splitlines())} lines)")

        if len(blocks) == 1:
            copy(blocks[0][1])
        else:
            self.app.push_screen(CodeBlockPicker(blocks), copy)

    def action_toggle_stats(self) -> None:
        self._side_choice = not self.query_one("#side").display
        self._show_side(self._side_choice)
