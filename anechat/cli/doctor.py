"""`anechat doctor`: the machine report (:mod:`anechat.doctor`) as a table."""

from __future__ import annotations


def doctor() -> None:
    """OS, chip, Python, each engine (available or why not), BLAS, model and data folders."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from anechat.doctor import report

    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in report():
        table.add_row(label, escape(value))
    Console().print(table)
