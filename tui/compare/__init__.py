"""The split-view comparison of engines and models (the harness is :mod:`anechat.compare`).

From a running app: ``app.push_screen(CompareScreen(contestants, prompt))``.
Importing this package stays light (the `anechat compare` command is registered
from here before any UI is needed); Textual loads with the screen.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CompareScreen", "register"]


def __getattr__(name: str) -> Any:
    if name == "CompareScreen":
        from anechat.tui.compare.screen import CompareScreen

        return CompareScreen
    if name == "register":
        from anechat.tui.compare.command import register

        return register
    raise AttributeError(name)
