"""The `anechat` command line (typer). Importing this module stays light: heavy
libraries (mlx, torch, coremltools, textual) load inside the commands that need them."""

from __future__ import annotations

from typing import Callable, Optional

import typer

from anechat import __version__
from anechat.cli.errors import friendly_errors
from anechat.cli.run import EngineOpt, ModelOpt, chat, run

app = typer.Typer(
    name="anechat",
    help=(
        "Chat with local LLMs and compare backends: Core ML on the Apple Neural Engine "
        "(on Linux, the MIL executor on CPU) and MLX. With no command, opens the app."
    ),
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"anechat {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def main(
    ctx: typer.Context,
    model: Optional[str] = ModelOpt,
    engine: Optional[str] = EngineOpt,
    theme: Optional[str] = typer.Option(None, "--theme", help="App theme (saved in the config file)."),
    low_motion: bool = typer.Option(False, "--low-motion", help="Fewer frames, no animations (slow SSH links)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
) -> None:
    """Open the app (chat, live speed and memory gauges, model picker)."""
    if ctx.invoked_subcommand is not None:
        return
    _open_app(model, engine, theme, low_motion)


_launchers: dict[str, Callable] = {}


def set_app_launcher(launcher: Callable) -> None:
    """The UI package (tui/entry.py) plugs in the function that opens the app."""
    _launchers["app"] = launcher


@friendly_errors
def _open_app(model, engine, theme, low_motion) -> None:
    launcher = _launchers.get("app")
    if launcher is None:
        typer.echo("anechat: the app is not available in this entry point; using the line-based chat", err=True)
        chat(model=model, engine=engine, system="", max_tokens=512, temp=0.0, top_p=1.0, top_k=0, seed=None, resume=None, no_history=False)
        return
    launcher(model, engine, theme, low_motion)


app.command(help="Answer one prompt: the answer streams to stdout, one stats line to stderr.")(run)
app.command(help="A plain line-based multi-turn chat (no TUI): /reset, /system TEXT, /quit.")(chat)


@app.command()
def doctor() -> None:
    """OS, chip, Python, each engine (available or why not), BLAS, model and data folders."""
    from rich.console import Console
    from rich.table import Table

    from anechat.cli.doctor import report

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    from rich.markup import escape

    for label, value in report():
        table.add_row(label, escape(value))
    Console().print(table)


def _mount_subcommands() -> None:
    """Sub-apps kept in their own modules; each keeps its import light."""
    from anechat.cli import bench as cli_bench, convert as cli_convert, history as cli_history, models as cli_models

    app.add_typer(cli_models.app, name="models", help="List, inspect, pull and remove local models.")
    app.add_typer(cli_history.app, name="history", help="Chat history: list, show, export, remove sessions.")
    cli_convert.register(app)
    cli_bench.register(app)


_mount_subcommands()
