"""`anechat run` (one prompt, streamed) and `anechat chat` (a plain line-based chat)."""

from __future__ import annotations

import json
import sys
from typing import Optional

import typer

from anechat.cli.errors import fail, friendly_errors
from anechat.cli.progress import progress_bar

ModelOpt = typer.Option(None, "-m", "--model", help="Model name (see `anechat models list`) or folder path. Default: the built-in SmolLM2-135M-Instruct.")
EngineOpt = typer.Option(None, "-e", "--engine", help="Engine: mlx, coreml or coreai. Default: from the config file, else mlx.")


def _params(max_tokens: int, temp: float, top_p: float, top_k: int, min_p: float, repetition_penalty: float, seed: Optional[int]):
    from anechat.engines.base import SamplingParams

    return SamplingParams(
        temperature=temp,
        top_p=top_p,
        top_k=top_k,
        min_p=min_p,
        repetition_penalty=repetition_penalty,
        seed=seed,
        max_tokens=max_tokens,
    ).validate()


def _engine_name(engine: Optional[str]) -> str:
    from anechat.config import load_config

    return engine or str(load_config().get("engine"))


def _load(controller, model: Optional[str], engine: str):
    with progress_bar("preparing model") as progress:
        return controller.load(model, engine, progress)


def read_prompt(prompt: str) -> str:
    """The prompt argument, or stdin for `-` (non-UTF-8 bytes replaced, with a warning)."""
    if prompt != "-":
        return prompt
    from anechat.safe_text import decode_stdin_bytes

    text, replaced = decode_stdin_bytes(sys.stdin.buffer.read())
    if replaced:
        typer.echo(f"anechat: stdin was not valid UTF-8; {replaced} byte(s) replaced with U+FFFD", err=True)
    return text


def run(
    prompt: str = typer.Argument(..., help="The prompt; `-` reads it from stdin."),
    model: Optional[str] = ModelOpt,
    engine: Optional[str] = EngineOpt,
    system: str = typer.Option("", "--system", help="System prompt."),
    max_tokens: int = typer.Option(512, "--max-tokens", help="Most tokens to generate."),
    temp: float = typer.Option(0.0, "--temp", help="Temperature (0 = greedy)."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling, in (0, 1]."),
    top_k: int = typer.Option(0, "--top-k", help="Keep the K most likely tokens (0 = off)."),
    min_p: float = typer.Option(0.0, "--min-p", help="Drop tokens below min_p × the top probability."),
    repetition_penalty: float = typer.Option(1.0, "--repetition-penalty", help="1 = off."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for reproducible sampling."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of streaming text."),
) -> None:
    """Answer one prompt: the answer streams to stdout, one stats line goes to stderr."""
    _run(prompt, model, engine, system, max_tokens, temp, top_p, top_k, min_p, repetition_penalty, seed, json_out)


@friendly_errors
def _run(prompt, model, engine, system, max_tokens, temp, top_p, top_k, min_p, repetition_penalty, seed, json_out) -> None:
    from anechat.chat.controller import ChatController
    from anechat.engines.base import GenerationStats, TextDelta
    from anechat.formatting import stats_line
    from anechat.safe_text import sanitize_for_terminal

    params = _params(max_tokens, temp, top_p, top_k, min_p, repetition_penalty, seed)
    text = read_prompt(prompt)
    if not text.strip():
        raise fail("the prompt is empty: give some text (or `-` to read stdin)")
    controller = ChatController(system_prompt=system, params=params)
    loaded = _load(controller, model, _engine_name(engine))
    stats = None
    for event in controller.send(text):
        if isinstance(event, TextDelta) and not json_out:
            sys.stdout.write(sanitize_for_terminal(event.text))
            sys.stdout.flush()
        elif isinstance(event, GenerationStats):
            stats = event
    assert stats is not None
    if json_out:
        record = {
            "model": loaded.name,
            "engine": loaded.engine,
            "runtime": loaded.runtime,
            "text": stats.text,
            **{k: getattr(stats, k) for k in ("prompt_tokens", "generation_tokens", "ttft_s", "prefill_tps", "decode_tps", "peak_memory_bytes", "finish_reason")},
        }
        if stats.error:
            record["error"] = stats.error
        sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write("\n")
        typer.echo(f"[{loaded.name} · {loaded.engine} · {loaded.runtime}] {stats_line(stats)}", err=True)
    if stats.finish_reason == "error":
        raise typer.Exit(1)


CHAT_HELP = """Commands: /reset (forget the conversation), /system TEXT (set the system prompt; empty clears it), /quit.
Ctrl+C stops an answer; Ctrl+D or /quit leaves."""


def chat(
    model: Optional[str] = ModelOpt,
    engine: Optional[str] = EngineOpt,
    system: str = typer.Option("", "--system", help="System prompt."),
    max_tokens: int = typer.Option(512, "--max-tokens"),
    temp: float = typer.Option(0.0, "--temp"),
    top_p: float = typer.Option(1.0, "--top-p"),
    top_k: int = typer.Option(0, "--top-k"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a recorded session (id or prefix, see `anechat history list`) with its model, engine, system prompt and parameters."),
    no_history: bool = typer.Option(False, "--no-history", help="Do not record this chat in the history."),
) -> None:
    """A plain line-based multi-turn chat (no TUI): /reset, /system TEXT, /quit. Recorded in the history."""
    _chat(model, engine, system, max_tokens, temp, top_p, top_k, seed, resume, no_history)


@friendly_errors
def _chat(model, engine, system, max_tokens, temp, top_p, top_k, seed, resume=None, no_history=False) -> None:
    from anechat.chat.controller import ChatController

    params = _params(max_tokens, temp, top_p, top_k, 0.0, 1.0, seed)
    history = None if no_history else _open_history()
    controller = ChatController(system_prompt=system, params=params, history=history)
    if resume:
        if history is None:
            raise fail("--resume needs the history: drop --no-history")
        recorded_model, recorded_engine = controller.open_session(resume)
        model, engine = model or recorded_model or None, engine or recorded_engine or None
        typer.echo(f"(resumed a session of {len(controller.messages)} messages)", err=True)
    loaded = _load(controller, model, _engine_name(engine))
    typer.echo(f"{loaded.name} on {loaded.engine} ({loaded.runtime}). {CHAT_HELP}", err=True)
    while True:
        try:
            line = input("you> ")
        except EOFError:
            typer.echo("", err=True)
            return
        except KeyboardInterrupt:
            typer.echo("", err=True)
            return
        if not _chat_turn(controller, line):
            return


def _open_history():
    """The history store, or None (with one line saying why) when it cannot be opened at all."""
    from anechat.history import HistoryStore
    from anechat.history.errors import HistoryError

    try:
        store = HistoryStore()
    except (HistoryError, OSError) as exc:
        typer.echo(f"anechat: chat history is off ({exc})", err=True)
        return None
    if store.warning:
        typer.echo(f"anechat: {store.warning}", err=True)
    return store


def _chat_turn(controller, line: str) -> bool:
    """Handle one line; False means quit."""
    from anechat.engines.base import GenerationStats, TextDelta
    from anechat.engines.errors import EngineError
    from anechat.formatting import stats_line
    from anechat.safe_text import sanitize_for_terminal

    stripped = line.strip()
    if not stripped:
        return True
    if stripped.startswith("/"):
        command, _, arg = stripped.partition(" ")
        if command in ("/quit", "/exit"):
            return False
        if command == "/reset":
            controller.new_chat()
            typer.echo("(conversation cleared)", err=True)
        elif command == "/system":
            controller.set_system_prompt(arg)
            typer.echo("(system prompt set)" if arg.strip() else "(system prompt cleared)", err=True)
        elif command == "/help":
            typer.echo(CHAT_HELP, err=True)
        else:
            typer.echo(f"unknown command {command}: use /reset, /system TEXT, /quit or /help", err=True)
        return True
    from anechat.engines.base import CancelToken

    cancel = CancelToken()
    sys.stdout.write("assistant> ")
    try:
        for event in controller.send(line, cancel):
            if isinstance(event, TextDelta):
                sys.stdout.write(sanitize_for_terminal(event.text))
                sys.stdout.flush()
            elif isinstance(event, GenerationStats):
                sys.stdout.write("\n")
                typer.echo(f"[{stats_line(event)}]", err=True)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        typer.echo("[stopped]", err=True)
    except EngineError as exc:
        sys.stdout.write("\n")
        typer.echo(f"anechat: {exc}", err=True)
    return True
