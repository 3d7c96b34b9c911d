"""`anechat doctor`: the machine report (:mod:`anechat.doctor`) as a table."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from anechat.cli.ranks import HostfileOpt, HostsOpt


def doctor(
    hosts: Optional[str] = HostsOpt,
    hostfile: Optional[Path] = HostfileOpt,
    model: Optional[str] = typer.Option(None, "-m", "--model", help="With --hosts: the model every host must hold (default: the built-in one)."),
) -> None:
    """OS, chip, Python, each engine (available or why not), BLAS, model and data folders; with
    --hosts / --hostfile, each host: reachable, its Python, anechat and MLX versions, the model."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from anechat.doctor import hosts_report, report
    from anechat.engines.mlx.distributed.hosts import plan_from

    plan = plan_from(hosts, hostfile)
    rows = report() + (hosts_report(plan, model) if plan is not None else [])
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, escape(value))
    Console().print(table)
