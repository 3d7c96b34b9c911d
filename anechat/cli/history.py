"""`anechat history ...`: list, show, export, delete and rename saved chat sessions.

Session ids may be shortened to any unique prefix (the list shows 8 characters).
Errors are one line on stderr with exit status 1; what comes from a model or a
person is sanitised before it reaches the terminal (see anechat.safe_text).
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Iterator, Optional

import typer

from anechat.cli.errors import fail, typer_app, warn
from anechat.formatting import stats_line
from anechat.history import HistoryStore
from anechat.history.export import render
from anechat.history.records import local_time
from anechat.safe_text import json_terminal_safe, sanitize_for_terminal

app = typer_app(name="history", help="Saved chats: list, show, export, delete (rm) and rename them.", no_args_is_help=True)


class ExportFormat(str, Enum):
    md = "md"
    json = "json"


def _echo(text: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    typer.echo(text.encode(encoding, "replace").decode(encoding, "replace"), err=err)


def _safe(text: str) -> str:
    return sanitize_for_terminal(text)


@contextmanager
def _store() -> Iterator[HistoryStore]:
    """The store, with its warning shown; its errors reach the CLI's error edge."""
    store = HistoryStore()
    if store.warning:
        warn(store.warning)
    try:
        yield store
    finally:
        store.close()


def _clip(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@app.command("list")
def list_(
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    search: Optional[str] = typer.Option(None, "--search", "-s", help="Only sessions whose title or messages contain TEXT."),
    limit: int = typer.Option(50, "--limit", "-n", min=1, help="At most this many sessions, newest first."),
) -> None:
    """List saved sessions, most recent first."""
    with _store() as store:
        sessions = store.list_sessions(query=search, limit=limit)
    if as_json:
        _echo(json_terminal_safe(json.dumps([s.to_dict() for s in sessions], ensure_ascii=False, indent=2)))
        return
    if not sessions:
        _echo("no saved sessions" + (f" containing {_safe(search)!r}" if search else ""))
        return
    _echo(f"{'ID':8}  {'UPDATED':16}  {'MSGS':>4}  {'MODEL':24}  TITLE")
    for s in sessions:
        model = s.model + (f" ({s.engine})" if s.engine else "")
        _echo(f"{s.short_id:8}  {local_time(s.updated):16}  {s.message_count:>4}  "
              f"{_safe(_clip(model, 24)):24}  {_safe(_clip(s.title or '(untitled)', 60))}")


@app.command()
def show(session_id: str = typer.Argument(..., metavar="ID", help="Session id or a unique prefix of it.")) -> None:
    """Show a session: its model, settings and every message."""
    with _store() as store:
        record = store.get_session(store.resolve_id(session_id))
    _echo(f"{_safe(record.title or '(untitled)')}  [{record.id}]")
    model = " · ".join(x for x in (record.model, record.engine) if x)
    _echo(f"{_safe(model) or 'no model'} · created {local_time(record.created)} · updated {local_time(record.updated)}")
    if record.params:
        _echo("params: " + _safe(", ".join(f"{k}={v}" for k, v in record.params.items())))
    if record.system_prompt:
        _echo(f"system: {_safe(record.system_prompt)}")
    for m in record.messages:
        tag = "" if m.status == "complete" else f" · {m.status}"
        who = "".join(f" · {_safe(x)}" for x in (m.engine, m.model) if x) if m.role == "assistant" else ""
        _echo(f"\n── {m.role}{who} · {local_time(m.created)}{tag} ──")
        _echo(_safe(m.content) if m.content else "(no text)")
        line = stats_line(m.stats, engine=m.engine, model=m.model)
        if line:
            _echo(f"   [{_safe(line)}]")


@app.command()
def export(
    session_id: str = typer.Argument(..., metavar="ID", help="Session id or a unique prefix of it."),
    format: ExportFormat = typer.Option(ExportFormat.md, "--format", "-f", help="md (to read) or json (everything)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout."),
) -> None:
    """Export a session as Markdown or JSON."""
    with _store() as store:
        text = render(store.get_session(store.resolve_id(session_id)), format.value)
    if output is None:
        # a file or a pipe gets the text as it is; a terminal gets it made safe
        _echo(_safe(text) if sys.stdout.isatty() else text, err=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as e:
        raise fail(f"cannot write {output}: {e.strerror or e}") from None
    _echo(f"wrote {sanitize_for_terminal(str(output))}", err=True)


@app.command()
def rm(
    session_id: str = typer.Argument(..., metavar="ID", help="Session id or a unique prefix of it."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Delete a session and its messages (asks first)."""
    with _store() as store:
        full = store.resolve_id(session_id)
        record = store.get_session(full)
        if not yes:
            question = f"Delete session {record.short_id} “{_safe(_clip(record.title or '(untitled)', 50))}” ({len(record.messages)} messages)?"
            try:
                ok = typer.confirm(question, default=False)
            except typer.Abort:  # no answer (stdin closed)
                ok = False
            if not ok:
                _echo("not deleted", err=True)
                raise typer.Exit(1)
        store.delete(full)
    _echo(f"deleted session {full[:8]}")


@app.command()
def rename(
    session_id: str = typer.Argument(..., metavar="ID", help="Session id or a unique prefix of it."),
    title: str = typer.Argument(..., help="The new title."),
) -> None:
    """Give a session a new title."""
    with _store() as store:
        full = store.resolve_id(session_id)
        store.rename(full, title)
    _echo(f"renamed session {full[:8]}")


if __name__ == "__main__":  # pragma: no cover
    app()
