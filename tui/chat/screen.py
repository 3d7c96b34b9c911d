"""The main screen: chat pane and input on the left, speed and memory on the right,
status line and footer below. Every action has a key, a footer entry and a
command palette entry (tui/chat/actions.py). The screen owns a turn view (an answer
streaming into the pane), a session opener and the compare entry; ``busy_reason``
is the one guard for "the chat cannot start something else now"."""

from __future__ import annotations

import asyncio
import threading

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer
from textual.worker import get_current_worker

from anechat.safe_text import sanitize_for_terminal

from anechat.tui.errors import error_line
from anechat.tui.messages import GaugesSampled, LoadProgress
from anechat.tui.switching import no_target_hint, switch_target
from anechat.tui.chat.actions import ACTIONS, IN_FOOTER, action_id
from anechat.tui.chat.answer_label import label_answer
from anechat.tui.chat.compare_entry import CompareEntry
from anechat.tui.chat.features import ChatFeatures
from anechat.tui.chat.session_open import SessionOpener
from anechat.tui.chat.turn_view import TurnView
from anechat.tui.widgets.chat_input import ChatInput
from anechat.tui.widgets.chat_pane import ChatPane, Notice
from anechat.tui.widgets.figures_bar import FiguresBar
from anechat.tui.widgets.memory_gauges import MemoryGauges
from anechat.tui.widgets.speed_panel import SpeedPanel
from anechat.tui.widgets.status_line import StatusLine
from anechat.tui.screens.code_blocks import CodeBlockPicker, code_blocks
from anechat.tui.screens.engine_picker import EnginePicker
from anechat.tui.screens.model_picker import ModelPicker, PickedModel, model_ref
from anechat.tui.screens.models import ModelsScreen
from anechat.tui.screens.params import ParamsResult, ParamsScreen
from anechat.tui.screens.sessions import SessionsScreen

WELCOME = "anechat — local models, live speed and memory. Ctrl+O picks a model · Ctrl+P lists every action."
#: below this width the speed and memory panels start hidden (Ctrl+T shows them)
NARROW = 90


class MainScreen(ChatFeatures):
    BINDINGS = [
        Binding(key, action, label, show=action in IN_FOOTER, priority=key != "escape", id=action_id(action))
        for key, action, label, *_ in ACTIONS
    ]

    def __init__(self) -> None:
        super().__init__()
        self.loading = False
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
        if self.loading:
            return "a model is loading: wait for it to finish"
        if self.inline_compare.running:
            return "a comparison is running: Esc stops it"
        return None

    def _refuse_if_busy(self) -> bool:
        busy = self.busy_reason()
        if busy:
            self.notify(busy, severity="warning")
        return busy is not None

    # -- loading ------------------------------------------------------------------------
    def load_model(self, ref: str, engine: str, *, switching: bool = False) -> None:
        if self._refuse_if_busy():
            return
        self.loading = True
        self.status.begin(f"loading {ref} on {engine}")
        self.run_worker(self._load(ref, engine, switching), group="load", exclusive=True)

    async def _load(self, ref: str, engine: str, switching: bool) -> None:
        def progress(step: str, fraction: float | None) -> None:
            self.post_message(LoadProgress(step, fraction))

        try:
            loaded = await self.app.engine_thread.run(self.controller.load, ref, engine, progress)
        except Exception as exc:  # shown in the app, never a crash
            await self.pane.add_notice(f"could not load {ref} on {engine}: {error_line(exc)}", "error")
            if switching and self.controller.messages:
                await self.pane.add_notice("the conversation is kept", "info")
        else:
            self.app.model_ref, self.app.engine_name = ref, engine
            verb = "switched to" if switching else "loaded"
            where = f"{loaded.engine} · {loaded.runtime}" if loaded.runtime else loaded.engine
            await self.pane.add_notice(f"{verb} {loaded.name} on {where}", "info")
            if switching and self.controller.messages:
                await self.pane.add_notice("the conversation continues here; the next answer prefills it", "info")
        finally:
            self.loading = False
            self.status.end()
            self.show_model()
            self.chat_input.focus()
        await self._send_pending()

    async def _send_pending(self) -> None:
        """The message kept while no model was ready goes out once one is."""
        if self.pending is not None and self.has_model() and self.busy_reason() is None:
            text, self.pending = self.pending, None
            await self.turn_view.start(text)
        elif self.pending is not None:
            await self.pane.add_notice("your message is still kept: it is sent once a model has loaded", "info")

    def has_model(self) -> bool:
        """A model is loaded and its engine still holds it (a failed switch may have unloaded it)."""
        ctrl = self.controller
        return bool(ctrl.loaded and ctrl.session is not None and getattr(ctrl.engine, "session", None) is ctrl.session)

    def show_model(self) -> None:
        ctrl = self.controller
        session = ctrl.session if self.has_model() else None
        size = getattr(getattr(session, "info", None), "context_length", None) if session else None
        self.status.set_model(ctrl.loaded if session else None, size or None)
        self.status.set_context(ctrl.last_stats.context_tokens if ctrl.last_stats and ctrl.messages else 0)
        self.status.set_state("ready" if session else "no model — Ctrl+O picks one")

    def on_load_progress(self, message: LoadProgress) -> None:
        if self.loading:
            self.status.step(message.step, message.fraction)

    # -- a turn -------------------------------------------------------------------------
    @on(ChatInput.Submitted)
    async def _submitted(self, event: ChatInput.Submitted) -> None:
        await self.slash.submitted(event.text)  # a slash command, an edited message or a message

    async def send(self, text: str) -> bool:
        """Start an answer to ``text``; False (with a message) when it cannot start."""
        if not text.strip():
            self.notify("the message is empty: type something first", severity="warning")
            return False
        if not self.loading and self._refuse_if_busy():  # a message sent while loading is kept
            return False
        if self.loading or not self.has_model():
            await self._keep(text)
            return False
        turn = await self.turn_view.start(text)
        await label_answer(turn.answer, self.controller.loaded)
        return True

    async def _keep(self, text: str) -> None:
        """No model is ready: keep ``text`` (after any kept before) and send it once one is."""
        self.pending = text if self.pending is None else f"{self.pending}\n\n{text}"
        if self.loading:
            why = "the model is still loading: your message is kept and sent once it is ready"
        else:
            why = "no model is loaded: your message is kept and sent once one is — Ctrl+O picks one"
        await self.pane.add_notice(why, "info")

    # -- actions ------------------------------------------------------------------------
    def action_stop(self) -> None:
        if self.app.screen.query("HelpPanel"):  # Esc closes the keys panel first
            self.app.action_hide_help_panel()
            return
        self.turn_view.stop() or self.inline_compare.stop() or self.editing.cancel()

    def action_models(self) -> None:
        def chosen(picked: PickedModel | None) -> None:
            if picked is not None:
                self.load_model(picked.ref, picked.engine)

        self.app.push_screen(ModelPicker(self.app.list_models, self.app.engine_name), chosen)

    def action_manage_models(self) -> None:
        ModelsScreen.open(self.app, self)

    async def unload_model(self) -> bool:
        """Unload the chat's model (the models screen removes it next); False while it answers or loads."""
        if self.busy_reason():
            return False
        name = self.controller.loaded.name if self.controller.loaded else None
        await self.app.engine_thread.run(self.controller.unload)
        self.show_model()
        if name:
            await self.pane.add_notice(f"unloaded {name}", "info")
        return True

    def action_engine(self) -> None:
        def chosen(engine: str | None) -> None:
            if engine is None:
                return
            loaded = self.controller.loaded
            if loaded is None:
                self.app.engine_name = engine
                self.notify(f"engine set to {engine}: pick a model with Ctrl+O")
            elif engine == loaded.engine:
                self.notify(f"already on {engine}")
            else:
                self.switch_engine(engine)

        current = self.controller.loaded.engine if self.controller.loaded else self.app.engine_name
        self.app.push_screen(EnginePicker(current, self.app.engine_check), chosen)

    @work(exclusive=True, group="switch")
    async def switch_engine(self, engine: str) -> None:
        """Continue this conversation on ``engine``: the same model, or its conversion for that engine."""
        loaded = self.controller.loaded
        self.status.begin(f"looking for {loaded.name} on {engine}")
        try:
            entries = await asyncio.to_thread(self.app.list_models)
        except Exception as exc:
            entries = []
            await self.pane.add_notice(f"could not list models: {error_line(exc)}", "error")
        finally:
            self.status.end()
        target = switch_target(loaded.name, loaded.path, engine, entries)
        if target is None:
            await self.pane.add_notice(no_target_hint(loaded.name, loaded.path, engine, entries), "error")
            if self.controller.messages:
                await self.pane.add_notice("the conversation is kept", "info")
            self.show_model()
            return
        self.load_model(model_ref(target), engine, switching=True)

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
