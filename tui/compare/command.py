"""The `anechat compare` command, plugged into the core CLI by tui/entry.py.

Importing this module stays light (typer only): Textual and the engines load
inside the command.
"""

from __future__ import annotations

import json
import sys
from typing import List, Optional

import typer

from anechat.cli.errors import fail, friendly_errors
from anechat.cli.run import read_prompt

COMPARE_HELP = """Ask several contestants (a model on an engine) the same prompt and watch their answers side by side, each with its own live decode tok/s, time to first token and memory; then a summary row: decode and prefill tok/s, TTFT and peak memory as ratios to the first contestant, and the token agreement between the answers (greedy decoding by default).

Pairing: every -m is combined with every -e, models first. `-m A -e coreml -e mlx` runs A on both engines; `-m A -m B -e mlx` runs A and B on mlx; `-m A -m B -e coreml -e mlx` runs four. Without -m: the default model; without -e: the configured engine. The first contestant is the baseline of the ratios.

Contestants run one after another (fair timing, one model in memory at a time); --concurrent runs them at the same time."""


def register(app: typer.Typer) -> None:
    if any(c.name == "compare" for c in app.registered_commands):
        return  # already plugged in (main() may run more than once in a process)
    app.command(name="compare", help=COMPARE_HELP)(compare)


def compare(
    prompt: Optional[str] = typer.Argument(None, help="The prompt; `-` reads it from stdin. Without it, type it in the app."),
    model: Optional[List[str]] = typer.Option(None, "-m", "--model", help="Model name or folder; repeat to compare models."),
    engine: Optional[List[str]] = typer.Option(None, "-e", "--engine", help="Engine (mlx, coreml or coreai); repeat to compare engines."),
    concurrent: bool = typer.Option(False, "--concurrent", help="Run every contestant at the same time (default: one after another)."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Most tokens each contestant generates."),
    temp: float = typer.Option(0.0, "--temp", help="Temperature (0 = greedy, which token agreement assumes)."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling."),
    system: str = typer.Option("", "--system", help="System prompt."),
    json_out: bool = typer.Option(False, "--json", help="No app: run the comparison and print the report (figures, ratios, agreement) as JSON."),
) -> None:
    _compare(prompt, model or [], engine or [], concurrent, max_tokens, temp, seed, system, json_out)


@friendly_errors
def _compare(prompt, models, engines, concurrent, max_tokens, temp, seed, system, json_out) -> None:
    from anechat.compare import pair_contestants
    from anechat.config import load_config
    from anechat.engines.base import SamplingParams
    from anechat.engines.registry import ENGINE_NAMES

    params = SamplingParams(temperature=temp, seed=seed, max_tokens=max_tokens).validate()
    for name in engines:
        if name not in ENGINE_NAMES:
            raise fail(f"unknown engine {name!r}: use one of {', '.join(ENGINE_NAMES)}")
    contestants = pair_contestants(models, engines or [str(load_config().get("engine"))])
    text = read_prompt(prompt) if prompt is not None else None
    if prompt is not None and not (text or "").strip():
        raise fail("the prompt is empty: give some text (or `-` to read stdin)")
    if json_out:
        if text is None:
            raise fail("--json needs a prompt: anechat compare \"PROMPT\" ... --json")
        _print_report(contestants, text, params, system, concurrent)
        return
    if load_config().get("low_motion"):  # as the main app: fewer frames, no animations (slow SSH links)
        import os

        os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
        os.environ.setdefault("TEXTUAL_FPS", "12")
    from anechat.tui.compare.app import CompareApp

    CompareApp(contestants, text, params=params, system_prompt=system, concurrent=concurrent).run()


def _print_report(contestants, text, params, system, concurrent) -> None:
    from anechat.compare import Phase, run_compare

    def on_event(index: int, event) -> None:
        if isinstance(event, Phase) and event.phase in ("loading", "generating", "done", "failed"):
            detail = f": {event.detail}" if event.phase == "failed" and event.detail else ""
            typer.echo(f"compare: {contestants[index].label} {event.phase}{detail}", err=True)

    report = run_compare(contestants, text, params=params, system_prompt=system, concurrent=concurrent, on_event=on_event)
    sys.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    if not any(r.ok for r in report.results):
        raise typer.Exit(1)
