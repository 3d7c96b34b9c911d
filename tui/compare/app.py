"""`anechat compare` as a stand-alone app: the compare screen, and exit when it closes."""

from __future__ import annotations

from typing import Sequence

from textual.app import App

from anechat.compare import CompareReport, Contestant
from anechat.engines.base import SamplingParams

from anechat.tui.compare.screen import CompareScreen


class CompareApp(App[CompareReport | None]):
    TITLE = "anechat compare"

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
        self._screen_args = dict(prompt=prompt, params=params, system_prompt=system_prompt, concurrent=concurrent, warmup=warmup)
        self.contestants = list(contestants)

    def on_mount(self) -> None:
        self._apply_configured_theme()
        self.push_screen(CompareScreen(self.contestants, **self._screen_args), callback=self.exit)

    def _apply_configured_theme(self) -> None:
        """The theme the main app uses (config file); an unknown one falls back to the default."""
        from anechat.config import load_config

        from anechat.tui.theme_files import install_themes

        install_themes(self, load_config().theme)

    @property
    def compare_screen(self) -> CompareScreen:
        screen = self.screen
        assert isinstance(screen, CompareScreen)
        return screen
