"""Loading a model into the chat and switching engines: the part of the main screen
that loads a model on the engine thread (status line and progress while it runs, one
notice when it ends), keeps a message sent before any model was ready and sends it
once one is, picks a model (Ctrl+O) or an engine (the same model, or its conversion
for that engine), and unloads the model for the models screen.

:class:`anechat.tui.chat.screen.MainScreen` mixes this class in; it provides the
controller, the chat pane, the message box, the status line, the turn view and
``busy_reason()`` (the one guard)."""

from __future__ import annotations

import asyncio

from textual import work

from anechat.tui.errors import error_line
from anechat.tui.messages import LoadProgress
from anechat.tui.switching import no_target_hint, switch_target
from anechat.tui.screens.engine_picker import EnginePicker
from anechat.tui.screens.model_picker import ModelPicker, PickedModel, model_ref


class ModelLoading:
    # set by MainScreen.__init__: a model is loading (not ``loading``: Textual's own
    # Widget.loading would cover the whole chat with a spinner while it loads); a message
    # sent before a model was ready, sent once one is
    loading_model: bool
    pending: str | None

    def load_model(self, ref: str, engine: str, *, switching: bool = False) -> None:
        if self._refuse_if_busy():
            return
        self.loading_model = True
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
            self.loading_model = False
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
        if self.loading_model:
            self.status.step(message.step, message.fraction)

    async def _keep(self, text: str) -> None:
        """No model is ready: keep ``text`` (after any kept before) and send it once one is."""
        self.pending = text if self.pending is None else f"{self.pending}\n\n{text}"
        if self.loading_model:
            why = "the model is still loading: your message is kept and sent once it is ready"
        else:
            why = "no model is loaded: your message is kept and sent once one is — Ctrl+O picks one"
        await self.pane.add_notice(why, "info")

    def action_models(self) -> None:
        def chosen(picked: PickedModel | None) -> None:
            if picked is not None:
                self.load_model(picked.ref, picked.engine)

        self.app.push_screen(ModelPicker(self.app.list_models, self.app.engine_name), chosen)

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
            if engine is not None:
                self.use_engine(engine)

        current = self.controller.loaded.engine if self.controller.loaded else self.app.engine_name
        self.app.push_screen(EnginePicker(current, self.app.engine_check), chosen)

    def use_engine(self, engine: str) -> None:
        """``engine`` picked (Ctrl+E or ``/engine``): the engine of the next model when none is
        loaded, else this conversation continues on it."""
        loaded = self.controller.loaded
        if loaded is None:
            self.app.engine_name = engine
            self.notify(f"engine set to {engine}: pick a model with Ctrl+O")
        elif engine == loaded.engine:
            self.notify(f"already on {engine}")
        elif not self._refuse_if_busy():
            self.switch_engine(engine)

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
