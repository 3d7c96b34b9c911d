"""`anechat bench`: reproducible speed figures per engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from anechat.cli.errors import fail, warn
from anechat.cli.ranks import HostfileOpt, HostsOpt, ShardOpt, use_hosts
from anechat.cli.run import check_engines, engine_or_setting

BENCH_HELP = """Benchmark a model on one or more engines (every -m runs on every -e) with the method of mlx_lm.benchmark: a random prompt of N tokens, one warm-up run, stop tokens ignored, the median of --runs timed runs. Prints a table (or Markdown), saves the run for --history, and with --json writes the figures together with a record of the machine (OS, chip, memory, package versions, BLAS, Core ML runtime). Figures from different machines say little: compare ratios."""


def bench(
    model: Optional[List[str]] = typer.Option(None, "-m", "--model", help="Model name or folder; repeat for several (each runs on each -e). Default: the built-in SmolLM2-135M-Instruct."),
    engine: Optional[List[str]] = typer.Option(None, "-e", "--engine", help="Engine to measure; repeat for several (-e coreml -e mlx). Default: the configured engine."),
    prompt_tokens: str = typer.Option("128,512", "--prompt-tokens", help="Prompt lengths in tokens, comma-separated."),
    gen_tokens: int = typer.Option(128, "--gen-tokens", help="Tokens generated per run (stop tokens ignored)."),
    runs: int = typer.Option(3, "--runs", help="Timed runs per prompt length (after one warm-up); the median is reported."),
    seed: int = typer.Option(0, "--seed", help="Seed of the random prompt (the same prompt for every engine)."),
    json_file: Optional[Path] = typer.Option(None, "--json", help="Also write the run (machine record + figures) to this JSON file; `-` prints it to stdout.", dir_okay=False),
    markdown: bool = typer.Option(False, "--markdown", help="Print a Markdown table instead of the Rich table."),
    history: bool = typer.Option(False, "--history", help="List earlier runs instead of measuring (with -m: only that model)."),
    hosts: Optional[str] = HostsOpt,
    hostfile: Optional[Path] = HostfileOpt,
    shard: str = ShardOpt,
) -> None:
    models, engines = model or [], engine or []
    if history:
        _show_history(models, markdown)
        return
    from anechat.bench.machine import machine_record
    from anechat.compare import pair_contestants
    from anechat.bench.method import BenchSettings, parse_lengths, run_bench
    from anechat.bench.report import RESULT_HEADERS, result_rows
    from anechat.bench.store import new_record, save_run

    settings = BenchSettings(parse_lengths(prompt_tokens), gen_tokens, runs, seed).validate()
    engines = list(dict.fromkeys(engines or [engine_or_setting(None)]))
    check_engines(engines)
    use_hosts(hosts, hostfile, shard, engines)
    cells = run_bench(pair_contestants(models, engines), settings, progress=_progress_printer())
    record = new_record(
        machine_record(),
        {"models": models or ["default"], "engines": engines, "prompt_tokens": list(settings.prompt_tokens), "gen_tokens": settings.gen_tokens, "runs": settings.runs, "seed": settings.seed, "warmup": settings.warmup},
        [c.as_dict() for c in cells],
    )
    saved = save_run(record)
    if json_file is not None:
        text = json.dumps(record, indent=2, ensure_ascii=False)
        if str(json_file) == "-":
            sys.stdout.write(text + "\n")
        else:
            json_file.write_text(text + "\n", encoding="utf-8")
    if str(json_file) != "-":
        machine = record["machine"]
        title = f"anechat bench · {machine['chip']} · {machine['blas']}"
        _print_table(RESULT_HEADERS, result_rows(record), title, markdown)
    typer.echo(f"saved as run {record['id']} in {saved} (anechat bench --history lists it)", err=True)
    if all(c.error for c in cells):
        raise fail(f"no engine produced figures: {cells[0].error}")


def _progress_printer():
    def say(message: str) -> None:
        typer.echo(f"bench: {message}", err=True)

    return say


def _print_table(headers, rows, title: str, markdown: bool) -> None:
    if markdown:
        from anechat.bench.report import markdown_table

        if title:
            typer.echo(f"**{title}**\n")
        typer.echo(markdown_table(headers, rows))
        return
    from rich.console import Console

    from anechat.bench.report import rich_table

    console = Console()
    if not console.is_terminal:  # piped: no terminal width to fit, keep rows on one line
        console = Console(width=200)
    console.print(rich_table(headers, rows, title))


def _show_history(models: List[str], markdown: bool) -> None:
    from anechat.bench.report import HISTORY_HEADERS, history_rows
    from anechat.bench.store import history_file, load_runs
    from anechat.formatting import plural

    runs, skipped = load_runs()
    if models:
        wanted = set(models)
        runs = [r for r in runs if wanted & set((r.get("settings") or {}).get("models", [])) or any(c.get("model") in wanted for c in r.get("results", []))]
    if skipped:
        warn(f"skipped {skipped} damaged line(s) in {history_file()}")
    if not runs:
        typer.echo(f"no benchmark runs yet{' for ' + ', '.join(models) if models else ''} (run: anechat bench)", err=True)
        return
    _print_table(HISTORY_HEADERS, history_rows(runs), f"anechat bench history ({plural(len(runs), 'run')}, {history_file()})", markdown)
