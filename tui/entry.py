"""The `anechat` entry point (the composition root): fast BLAS first on Linux, then the
core typer CLI with the app-opening commands of this UI package plugged in.

It lives in tui/ because imports only go tui -> anechat -> engines: the core CLI
knows nothing of the app; this module hands it the launchers."""

from __future__ import annotations

import os
import sys

# Commands that run models re-execute once with Debian's OpenBLAS preloaded (see anechat/blas.py).
_LIGHT = {"models", "history", "--help", "-h", "--version"}


def main() -> None:
    args = sys.argv[1:]
    if not (set(args) & {"--help", "-h", "--version"}) and not (args and args[0] in _LIGHT):
        from anechat.blas import ensure_fast_blas

        ensure_fast_blas()
    from anechat.cli.main import app, set_app_launcher

    from anechat.tui.compare.command import register as register_compare
    from anechat.tui.serve import register as register_serve

    set_app_launcher(run_app)
    register_compare(app)
    register_serve(app)
    app(prog_name="anechat")


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

    from anechat.tui.app import AnechatApp

    app = AnechatApp(model=model, engine=engine, theme=theme, low_motion=low_motion, config=config)
    app.run()
    if app.return_code:  # e.g. 129: the terminal hung up
        raise SystemExit(app.return_code)


if __name__ == "__main__":
    main()
