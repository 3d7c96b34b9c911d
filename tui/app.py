"""Entry point for people: ``anechat`` (no command) opens the app through :func:`run_app`.

Kept light: Textual and the app load inside run_app, after the low-motion
settings are in the environment (Textual reads TEXTUAL_FPS when it is imported).
"""

from __future__ import annotations

import os
import sys

LOW_MOTION_FPS = "12"


def _apply_low_motion() -> None:
    os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
    os.environ.setdefault("TEXTUAL_FPS", LOW_MOTION_FPS)
    screen = sys.modules.get("textual.screen")
    if screen is not None:  # Textual already imported: lower its screen refresh rate directly
        screen.UPDATE_PERIOD = 1 / int(os.environ["TEXTUAL_FPS"])


def run_app(model: str | None = None, engine: str | None = None, theme: str | None = None, low_motion: bool = False) -> None:
    """Open the app. None means "from anechat's config file" (model, engine, theme, low_motion).

    A theme given here is saved as the new default; a broken config file is reported
    in the app and never stops it.
    """
    from anechat.config import load_config, save_config

    config = load_config()
    model = model or config.get("model")
    engine = engine or config.get("engine")
    low_motion = bool(low_motion or config.get("low_motion"))
    if theme:
        save_config({"theme": theme})
    theme = theme or config.get("theme")
    if low_motion:
        _apply_low_motion()

    from .application import AnechatApp

    app = AnechatApp(model=model, engine=engine, theme=theme, low_motion=low_motion, config=config)
    app.run()
    if app.return_code:  # e.g. 129: the terminal hung up
        raise SystemExit(app.return_code)


def main() -> None:
    """``python -m anechat.tui``: the app with the config file's defaults (what ``anechat serve`` runs)."""
    run_app()
