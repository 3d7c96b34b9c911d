"""The Textual app: owns the ChatController, the engine thread, themes and settings.

Tests and benchmarks build it directly; people start it through
:func:`anechat.tui.entry.run_app`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable, Iterable

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from anechat.chat.controller import ChatController
from anechat.catalog.engines import engine_availability
from anechat.config import Settings, load_config, save_config
from anechat.metrics.gauges import GaugeSampler, Gauges
from anechat.safe_text import sanitize_for_terminal

from anechat.chat.engine_thread import EngineThread
from anechat.tui.hangup import is_terminal, terminal_hung_up
from anechat.tui.chat.actions import ACTIONS, action_id
from anechat.tui.chat.compare_entry import COMPARE_HELP, COMPARE_TITLE
from anechat.tui.chat.screen import MainScreen
from anechat.tui.theme_files import install_themes


def _catalog_models() -> list:
    from anechat.catalog import list_models

    return list_models()


class AnechatApp(App):
    TITLE = "anechat"
    CSS_PATH = ["styles/app.tcss"]
    ENABLE_COMMAND_PALETTE = True

    def __init__(
        self,
        *,
        model: str | None = None,
        engine: str | None = None,
        theme: str | None = None,
        low_motion: bool = False,
        controller: ChatController | None = None,
        list_models: Callable[[], list] = _catalog_models,
        engine_check: Callable = engine_availability,
        gauges: Gauges | None = None,
        save_settings: bool = True,
        clock: Callable[[], float] = time.perf_counter,
        history: bool = True,
        config: Settings | None = None,
    ) -> None:
        """``model``/``engine``: what to load at start (None = nothing yet).

        ``gauges``: a fixed sample shown instead of live ones (snapshots, tests);
        ``save_settings=False`` never writes the config file.
        ``history``: record chats in the history database (opened at start, off the
        event loop; a controller that already has a store keeps it).
        ``config``: the settings as loaded (read here when None); their warnings are shown.
        """
        super().__init__()
        #: the app's own chat takes each loaded model's sampling defaults (until the person
        #: sets them); a controller handed in keeps its parameters
        self.controller = controller or ChatController(model_sampling=True)
        self.record_history = history
        self.history_ready = asyncio.Event()  # set once the history store is open (or off)
        self._own_history = None  # the store this app opened (and closes)
        self.engine_thread = EngineThread()
        self.model_ref = model
        self.engine_name = engine or "mlx"
        self.low_motion = low_motion
        self.list_models = list_models
        self.engine_check = engine_check
        self.frozen_gauges = gauges
        self.save_settings = save_settings
        self.clock = clock
        self.sampler = GaugeSampler()
        # rates (all bounded): checks of the answer's buffer, the most text frames and
        # Markdown frames per second (both further paced by what they cost, see
        # tui/pacing.py), live stats, memory gauges
        # low motion: a frame every 4 s at most (each one that scrolls the answer repaints
        # the pane), which cuts the bytes a streaming answer writes by about two thirds
        self.drain_hz = 0.25 if low_motion else 4.0
        self.markdown_hz = 0.2 if low_motion else 1.0
        self.stats_hz = 0.25 if low_motion else 1.0
        self.gauges_hz = 1.0 if low_motion else 2.0
        # while an answer streams, drawing may use at most this share of one core: on a
        # small machine the engine uses every core, and the UI's share is taken from it
        self.ui_budget = 0.015 if low_motion else 0.025
        if low_motion:
            self.animation_level = "none"
        self.first_paint_at: float | None = None  # time.time() when the main screen was first painted
        self.startup_warnings: list[str] = []
        self.config = config if config is not None else load_config()
        self.startup_warnings.extend(self.config.warnings)
        self.keymap = self._keymap_from(self.config.keys)
        self.startup_warnings.extend(install_themes(self, theme))

    def _keymap_from(self, keys: dict[str, str]) -> dict[str, str]:
        """config.toml's [keys] (action name -> key) for the actions the app has; a warning
        names the others."""
        known = {action_id(action) for _key, action, *_ in ACTIONS}
        unknown = sorted(set(keys) - known)
        if unknown:
            self.startup_warnings.append(
                f"config [keys]: no action named {', '.join(unknown)}; ignored (actions: {', '.join(sorted(known))})"
            )
        return {name: key for name, key in keys.items() if name in known}

    def on_mount(self) -> None:
        if self.keymap:
            self.set_keymap(self.keymap)
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.run_worker(self._attach_history(), group="history")
        self.push_screen(MainScreen())
        for line in self.startup_warnings:
            self.notify(sanitize_for_terminal(line), severity="warning", timeout=12, markup=False)
        if not self.is_headless and is_terminal(0):
            self.set_interval(1.0, self._exit_if_terminal_hung_up)

    def _exit_if_terminal_hung_up(self) -> None:
        """Nobody can see or type into this app any more: stop the answer, save, quit."""
        if terminal_hung_up(0):
            self.exit(return_code=129)  # as if ended by SIGHUP

    # -- chat history ---------------------------------------------------------------
    async def _attach_history(self) -> None:
        """Open the history store on the engine thread (ahead of the first load and turn)
        and give it to the controller; a store that fell back to memory says why."""
        if self.controller.history is None and self.record_history:
            try:
                await self.engine_thread.run(self._open_history_store)
            except Exception as exc:  # the app runs without history rather than not at all
                self.show_warning(f"chat history is off: {exc}")
        self.history_ready.set()
        store = self.controller.history
        if store is not None and store.warning:
            self.show_warning(store.warning)

    async def history_store(self):
        """The chat history store once it is open; None when history is off."""
        await self.history_ready.wait()
        return self.controller.history

    def _open_history_store(self) -> None:
        from anechat.history import HistoryStore

        self._own_history = self.controller.history = HistoryStore()

    def show_warning(self, line: str) -> None:
        """A problem the person should know about: a notification and a line in the chat."""
        self.notify(sanitize_for_terminal(line), severity="warning", timeout=12, markup=False)
        main = next((s for s in self.screen_stack if isinstance(s, MainScreen)), None)
        if main is not None and main.is_mounted:
            self.call_later(main.pane.add_notice, line, "warning")
        else:
            self.startup_warnings.append(line)  # the main screen shows it when it mounts

    def mark_painted(self) -> None:
        if self.first_paint_at is None:
            self.first_paint_at = time.time()

    def _theme_changed(self, theme) -> None:
        if not self.save_settings:
            return
        warning = save_config({"theme": theme.name})
        if warning:
            self.notify(warning, severity="warning")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        if isinstance(screen, MainScreen):
            for key, action, _label, title, help_text in ACTIONS:
                key = self.keymap.get(action_id(action), key)
                shown = self.get_key_display(Binding(key, action))
                yield SystemCommand(f"{title} ({shown})", help_text, lambda a=action: screen.run_action(a))
            yield SystemCommand(COMPARE_TITLE, COMPARE_HELP, screen.compare.start)
        for command in super().get_system_commands(screen):
            if not (isinstance(screen, MainScreen) and command.title == "Quit"):  # listed above, with its key
                yield command

    def on_unmount(self) -> None:
        """Stop the engine thread last: unload the model there and release MLX's streams."""
        self.engine_thread.close(cleanup=self._close_engine_and_history)

    def _close_engine_and_history(self) -> None:
        try:
            self.controller.unload()
        finally:
            if self._own_history is not None:
                self._own_history.close()
