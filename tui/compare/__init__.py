"""The split-view comparison of engines and models (the harness is :mod:`anechat.compare`).

From a running app: ``app.push_screen(CompareScreen(contestants, prompt))``; the
`anechat compare` command (anechat/cli/compare.py) opens ``CompareApp`` through the
launcher tui/entry.py gives it. Importing this package stays light; Textual loads
with the screen.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CompareScreen"]


def __getattr__(name: str) -> Any:
    if name == "CompareScreen":
        from anechat.tui.compare.screen import CompareScreen

        return CompareScreen
    raise AttributeError(name)
