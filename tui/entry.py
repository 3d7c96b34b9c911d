"""The `anechat` entry point (the composition root): fast BLAS first on Linux, then the
core typer CLI, built with the functions of this UI package that open the app and
the compare app, plus `anechat serve`.

It lives in tui/ because imports only go tui -> anechat -> engines: the core CLI
knows nothing of the app; this module hands it the launchers."""

from __future__ import annotations

import sys
from typing import Sequence

# Commands that run models re-execute once with Debian's OpenBLAS preloaded (see anechat/blas.py).
_LIGHT = {"models", "history", "--help", "-h", "--version"}
#: what a bare `anechat` says (and then exits 2) when stdin or stdout is not a terminal
NO_TERMINAL = "anechat needs a terminal; use `anechat run` or `anechat chat` in scripts"

def main() -> None:
    args = sys.argv[1:]
    if not (set(args) & {"--help", "-h", "--version"}) and not (args and args[0] in _LIGHT):
        from anechat.blas import ensure_fast_blas

        ensure_fast_blas()
    from anechat.cli.main import build_cli

    from anechat.tui.serve import register as register_serve

    app = build_cli(launch_app=run_app, launch_compare=run_compare_app)
    register_serve(app)
    app(prog_name="anechat")


def run_app(model: str | None = None, engine: str | None = None, theme: str | None = None, low_motion: bool = False) -> None:
    """Open the app. None means "from anechat's settings" (model, engine, theme, low_motion).

    A theme given here is saved as the new default (an unknown one is refused, never
    saved); a broken config file is reported in the app and never stops it.
    """
    if theme:
        _check_theme(theme)  # a bad argument is said first, terminal or not
    require_terminal()
    from anechat.config import load_config, save_config

    settings = load_config()
    low_motion = low_motion or settings.low_motion
    if theme:
        save_config({"theme": theme})
    if low_motion:
        from anechat.tui.motion import apply_low_motion

        apply_low_motion()

    from anechat.tui.app import AnechatApp

    app = AnechatApp(
        model=model or settings.model,
        engine=engine or settings.engine,
        theme=theme or settings.theme,
        low_motion=low_motion,
        config=settings,
    )
    app.run()
    if app.return_code:  # e.g. 129: the terminal hung up
        raise SystemExit(app.return_code)


def _check_theme(theme: str) -> None:
    """Refuse a theme no theme file (nor Textual) defines, in one line, before it is saved."""
    from textual.theme import BUILTIN_THEMES

    from anechat.cli.errors import fail
    from anechat.tui.theme_files import load_themes

    known = sorted({t.name for t in load_themes()[0]} | set(BUILTIN_THEMES))
    if theme not in known:
        raise fail(f"unknown theme {theme!r}: use one of {', '.join(known)}")


def require_terminal() -> None:
    """Stop at once, with one line, when nobody can see or type into the app (cron, nohup,
    a pipe): without a terminal Textual would spin on end-of-file for ever."""
    from anechat.tui.hangup import is_terminal

    if not (is_terminal(0) and is_terminal(1)):
        print(NO_TERMINAL, file=sys.stderr)
        raise SystemExit(2)


def run_compare_app(contestants: Sequence, prompt: str | None, params, system_prompt: str, concurrent: bool) -> None:
    """Open the compare app (`anechat compare` without --json)."""
    from anechat.config import load_config

    if load_config().low_motion:
        from anechat.tui.motion import apply_low_motion

        apply_low_motion()
    from anechat.tui.compare.app import CompareApp

    CompareApp(contestants, prompt, params=params, system_prompt=system_prompt, concurrent=concurrent).run()


if __name__ == "__main__":
    main()
