"""The `anechat` command line (typer), built by :func:`build_cli`.

The UI package (tui/entry.py) builds it with the functions that open the app and
the compare app; the core CLI knows nothing of the UI. Importing this module stays
light: heavy libraries (mlx, torch, coremltools, textual) load inside the commands
that need them. Errors are printed once, at the edge (:mod:`anechat.cli.errors`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional

import typer

from anechat import __version__
from anechat.cli.compare import CompareLauncher
from anechat.cli.errors import typer_app, warn
from anechat.cli.ranks import HostfileOpt, HostsOpt, ShardOpt, use_hosts
from anechat.cli.run import EngineOpt, ModelOpt, chat, run

#: opens the app: launch_app(model, engine, theme, low_motion); None means "from the settings"
AppLauncher = Callable[[Optional[str], Optional[str], Optional[str], bool], None]

HELP = (
    "Chat with local LLMs and compare backends: Core ML on the Apple Neural Engine "
    "(on Linux, the MIL executor on CPU) and MLX. With no command, opens the app."
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"anechat {__version__}")
        raise typer.Exit()


def build_cli(launch_app: AppLauncher | None = None, launch_compare: CompareLauncher | None = None) -> typer.Typer:
    """The whole `anechat` command line. Without ``launch_app`` a bare `anechat` falls back
    to the line-based chat; without ``launch_compare`` `anechat compare` needs --json."""
    from anechat.cli import api, bench, compare, convert, doctor, history, models

    app = typer_app(name="anechat", help=HELP, no_args_is_help=False)

    @app.callback(invoke_without_command=True)
    def main(
        ctx: typer.Context,
        model: Optional[str] = ModelOpt,
        engine: Optional[str] = EngineOpt,
        theme: Optional[str] = typer.Option(None, "--theme", help="App theme (saved in the config file)."),
        low_motion: bool = typer.Option(False, "--low-motion", help="Fewer frames, no animations (slow SSH links)."),
        version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Show the version."),
        hosts: Optional[str] = HostsOpt,
        hostfile: Optional[Path] = HostfileOpt,
        shard: str = ShardOpt,
    ) -> None:
        """Open the app (chat, live speed and memory gauges, model picker)."""
        from anechat.cli.errors import one_line_errors
        from anechat.cli.run import engine_or_setting

        if hosts or hostfile:
            with one_line_errors():  # before a command too: `anechat --hosts A,B run ...`
                use_hosts(hosts, hostfile, shard, [engine_or_setting(engine)])
        if ctx.invoked_subcommand is not None:
            return
        if launch_app is None:
            warn("the app is not available in this entry point; using the line-based chat")
            chat(model=model, engine=engine, system="", max_tokens=512, temp=0.0, top_p=1.0, top_k=0, seed=None, resume=None, no_history=False, hosts=hosts, hostfile=hostfile, shard=shard)
            return
        launch_app(model, engine, theme, low_motion)

    app.command(help="Answer one prompt: the answer streams to stdout, one stats line to stderr.")(run)
    app.command(help="A plain line-based multi-turn chat (no TUI): /reset, /system TEXT, /quit.")(chat)
    app.command()(doctor.doctor)
    app.add_typer(models.app, name="models", help="List, inspect, pull and remove local models.")
    app.add_typer(history.app, name="history", help="Chat history: list, show, export, remove sessions.")
    app.command(help=convert.CONVERT_HELP)(convert.convert)
    app.command(name="bench", help=bench.BENCH_HELP)(bench.bench)
    app.command(name="compare", help=compare.COMPARE_HELP)(compare.compare_command(launch_compare))
    app.command(name="api", help=api.API_HELP)(api.api)
    return app
