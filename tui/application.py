"""The Textual app: owns the ChatController, the engine thread, themes and settings.

Tests and benchmarks build it directly; people start it through
:func:`anechat.tui.app.run_app`.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from textual.app import App, SystemCommand
from textual.screen import Screen

from anechat.chat import ChatController
from anechat.config import save_config
from anechat.engines.registry import availability
from anechat.metrics import GaugeSampler, Gauges

from .engine_thread import EngineThread
from .screens.main import ACTIONS, MainScreen
from .theme_files import load_themes

DEFAULT_THEME = "anechat-dark"


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
        engine_check: Callable = availability,
        gauges: Gauges | None = None,
        save_settings: bool = True,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        """``model``/``engine``: what to load at start (None = nothing yet).

        ``gauges``: a fixed sample shown instead of live ones (snapshots, tests);
        ``save_settings=False`` never writes the config file.
        """
        super().__init__()
        self.controller = controller or ChatController()
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
        # rates (all bounded): text drained into the chat pane (the line being written),
        # finished lines re-rendered as Markdown, live stats, memory gauges
        self.drain_hz = 4.0 if low_motion else 8.0
        self.markdown_hz = 1.0 if low_motion else 3.0
        self.stats_hz = 1.0 if low_motion else 3.0
        self.gauges_hz = 1.0 if low_motion else 2.0
        if low_motion:
            self.animation_level = "none"
        self.first_paint_at: float | None = None  # time.time() when the main screen was first painted
        self.startup_warnings: list[str] = []
        themes, warnings = load_themes()
        self.startup_warnings.extend(warnings)
        for t in themes:
            self.register_theme(t)
        wanted = theme or DEFAULT_THEME
        if wanted not in self.available_themes:
            self.startup_warnings.append(f"unknown theme {wanted!r}; using {DEFAULT_THEME} (Ctrl+P → theme lists them)")
            wanted = DEFAULT_THEME if DEFAULT_THEME in self.available_themes else "textual-dark"
        self.theme = wanted

    def on_mount(self) -> None:
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self.push_screen(MainScreen())

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
            for _key, action, label, help_text in ACTIONS:
                yield SystemCommand(label, help_text, lambda a=action: screen.run_action(a))
        yield from super().get_system_commands(screen)

    def on_unmount(self) -> None:
        """Stop the engine thread last: unload the model there and release MLX's streams."""
        self.engine_thread.close(cleanup=self.controller.unload)
