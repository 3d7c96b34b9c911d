"""The `anechat` entry point (the composition root): fast BLAS first on Linux, then the
core typer CLI with the app-opening commands of this UI package plugged in.

It lives in tui/ because imports only go tui -> anechat -> engines: the core CLI
knows nothing of the app; this module hands it the launchers."""

from __future__ import annotations

import sys

import typer

# Commands that run models re-execute once with Debian's OpenBLAS preloaded (see anechat/blas.py).
_LIGHT = {"models", "history", "--help", "-h", "--version"}


def main() -> None:
    args = sys.argv[1:]
    if not (set(args) & {"--help", "-h", "--version"}) and not (args and args[0] in _LIGHT):
        from anechat.blas import ensure_fast_blas

        ensure_fast_blas()
    from anechat.cli import app, set_app_launcher

    from .compare.command import register as register_compare

    set_app_launcher(_launch_app)
    register_compare(app)
    app.command(name="serve", help="Serve the app to a browser on localhost (textual-serve).")(_serve)
    app(prog_name="anechat")


def _launch_app(model: str | None, engine: str | None, theme: str | None, low_motion: bool) -> None:
    from .app import run_app

    run_app(model=model, engine=engine, theme=theme, low_motion=low_motion)


def _serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep it on localhost)."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
) -> None:
    """Serve the app to a browser on localhost through textual-serve."""
    from anechat.cli_errors import friendly_errors

    from .serve import serve

    friendly_errors(serve)(host=host, port=port)


if __name__ == "__main__":
    main()
