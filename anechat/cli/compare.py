"""`anechat compare`: the same prompt to several contestants (a model on an engine).

With --json it runs headless here and prints the report; otherwise it opens the
compare app through the launcher the UI package passes to ``build_cli``. Importing
this module stays light (typer only).
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Callable, List, Optional, Sequence

from pathlib import Path

import typer

from anechat.cli.errors import fail
from anechat.cli.ranks import HostfileOpt, HostsOpt, ShardOpt, use_hosts
from anechat.cli.run import check_engines, engine_or_setting, read_prompt

if TYPE_CHECKING:
    from anechat.compare import Contestant
    from anechat.engines.base import SamplingParams

#: opens the compare app: launch_compare(contestants, prompt or None, params, system_prompt, concurrent)
CompareLauncher = Callable[[Sequence["Contestant"], Optional[str], "SamplingParams", str, bool], None]

COMPARE_HELP = """Ask several contestants (a model on an engine) the same prompt and watch their answers side by side, each with its own live decode tok/s, time to first token and memory; then a summary row: decode and prefill tok/s, TTFT and peak memory as ratios to the first contestant, and the token agreement between the answers (greedy decoding by default).

Pairing: every -m is combined with every -e, models first. `-m A -e coreml -e mlx` runs A on both engines; `-m A -m B -e mlx` runs A and B on mlx; `-m A -m B -e coreml -e mlx` runs four. Without -m: the default model; without -e: the configured engine. The first contestant is the baseline of the ratios.

Contestants run one after another (fair timing, one model in memory at a time); --concurrent runs them at the same time."""


def compare_command(launch_compare: CompareLauncher | None) -> Callable[..., None]:
    """The `compare` command, opening the compare app with ``launch_compare`` (None: --json only)."""

    def compare(
        prompt: Optional[str] = typer.Argument(None, help="The prompt; `-` reads it from stdin. Without it, type it in the app."),
        model: Optional[List[str]] = typer.Option(None, "-m", "--model", help="Model name or folder; repeat to compare models. On each -e the model's variant for that engine runs."),
        engine: Optional[List[str]] = typer.Option(None, "-e", "--engine", help="Engine (mlx or coreml); repeat to compare engines."),
        concurrent: bool = typer.Option(False, "--concurrent", help="Run every contestant at the same time (default: one after another)."),
        max_tokens: int = typer.Option(256, "--max-tokens", help="Most tokens each contestant generates."),
        temp: float = typer.Option(0.0, "--temp", help="Temperature (default 0: greedy decoding, which token agreement assumes)."),
        seed: Optional[int] = typer.Option(None, "--seed", help="Seed for sampling."),
        system: str = typer.Option("", "--system", help="System prompt."),
        json_out: bool = typer.Option(False, "--json", help="No app: run the comparison and print the report (figures, ratios, agreement) as JSON."),
        hosts: Optional[str] = HostsOpt,
        hostfile: Optional[Path] = HostfileOpt,
        shard: str = ShardOpt,
    ) -> None:
        from anechat.compare import pair_contestants
        from anechat.engines.base import SamplingParams

        params = SamplingParams(temperature=temp, seed=seed, max_tokens=max_tokens).validate()
        check_engines(engine or [])
        use_hosts(hosts, hostfile, shard, engine or [engine_or_setting(None)])
        contestants = pair_contestants(model or [], engine or [engine_or_setting(None)])
        text = read_prompt(prompt) if prompt is not None else None
        if prompt is not None and not (text or "").strip():
            raise fail("the prompt is empty: give some text (or `-` to read stdin)")
        if launch_compare is None and not json_out:
            raise fail("the compare app is not available in this entry point", hint="add --json for the report")
        if json_out:
            if text is None:
                raise fail("--json needs a prompt: anechat compare \"PROMPT\" ... --json")
            print_report(contestants, text, params, system, concurrent)
            return
        launch_compare(contestants, text, params, system, concurrent)

    return compare


def decoding_line(params) -> str:
    """What the decoding means for token agreement, said once before the figures."""
    if params.greedy:
        return "greedy decoding (temperature 0): the same model on two correct engines should give the same tokens"
    return f"sampling at temperature {params.temperature:g}: token agreement says little (drop --temp for greedy decoding)"


def print_report(contestants, text: str, params, system: str, concurrent: bool) -> None:
    """Run the comparison headless: phases on stderr, the report as JSON on stdout.
    Exits 1 when any contestant failed (the others' figures are still printed)."""
    from anechat.compare import Phase, run_compare
    from anechat.safe_text import sanitize_for_terminal

    typer.echo(f"compare: {decoding_line(params)}", err=True)

    def on_event(index: int, event) -> None:
        label = contestants[index].label
        if isinstance(event, Phase) and event.phase == "ready" and event.loaded is not None and event.loaded.note:
            typer.echo(f"compare: {label}: {sanitize_for_terminal(event.loaded.note)}", err=True)
        if isinstance(event, Phase) and event.phase in ("loading", "generating", "done", "failed"):
            detail = f": {event.detail}" if event.phase == "failed" and event.detail else ""
            typer.echo(f"compare: {label} {event.phase}{sanitize_for_terminal(detail)}", err=True)

    report = run_compare(contestants, text, params=params, system_prompt=system, concurrent=concurrent, on_event=on_event)
    sys.stdout.write(json.dumps(report.as_dict(), indent=2, ensure_ascii=False) + "\n")
    failed = [r for r in report.results if not r.ok]
    if failed:
        raise fail(f"{len(failed)} of {len(report.results)} contestants failed: " + "; ".join(
            f"{r.contestant.label}: {r.error or 'no answer'}" for r in failed))
