"""`anechat run` (one prompt, streamed) and `anechat chat` (a plain line-based chat)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional, Sequence

import typer

from anechat.cli.errors import fail, print_error, warn
from anechat.cli.ranks import HostfileOpt, HostsOpt, ShardOpt, use_hosts
from anechat.cli.progress import progress_bar

ModelOpt = typer.Option(None, "-m", "--model", help="Model name (see `anechat models list`) or folder path; the model's variant for the engine is loaded. Default: the built-in SmolLM2-135M-Instruct.")
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


def engine_or_setting(engine: Optional[str]) -> str:
    """The engine given with -e, else the one from the settings."""
    from anechat.config import load_config

    return engine or load_config().engine


def check_engines(names: Sequence[str]) -> None:
    """Refuse an unknown engine name in one line (before any model loads)."""
    from anechat.engines.registry import ENGINE_NAMES

    for name in names:
        if name not in ENGINE_NAMES:
            raise fail(f"unknown engine {name!r}: use one of {', '.join(ENGINE_NAMES)}")


def _load(controller, model: Optional[str], engine: str):
    """Load ``model``'s variant for ``engine``, saying which one when it was not the one named."""
    with progress_bar("preparing model") as progress:
        loaded = controller.load(model, engine, progress)
    if loaded.note:
        from anechat.safe_text import sanitize_for_terminal

        typer.echo(sanitize_for_terminal(loaded.note), err=True)
    return loaded


def read_prompt(prompt: str) -> str:
    """The prompt argument, or all of stdin for `-` (bytes that are not UTF-8 become
    U+FFFD, with one warning saying how many)."""
    if prompt != "-":
        return prompt
    from anechat.safe_text import decode_stdin_bytes

    decoded = decode_stdin_bytes(sys.stdin.buffer.read())
    if decoded.message:
        warn(decoded.message)
    return decoded.text


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
    hosts: Optional[str] = HostsOpt,
    hostfile: Optional[Path] = HostfileOpt,
    shard: str = ShardOpt,
) -> None:
    """Answer one prompt: the answer streams to stdout, one stats line goes to stderr."""
    from anechat.chat.controller import ChatController
    from anechat.engines.base import GenerationStats, TextDelta
    from anechat.formatting import dropped_line, stats_line
    from anechat.safe_text import json_terminal_safe, sanitize_for_terminal

    params = _params(max_tokens, temp, top_p, top_k, min_p, repetition_penalty, seed)
    use_hosts(hosts, hostfile, shard, [engine_or_setting(engine)])
    text = read_prompt(prompt)
    if not text.strip():
        raise fail("the prompt is empty: give some text (or `-` to read stdin)")
    controller = ChatController(system_prompt=system, params=params)
    loaded = _load(controller, model, engine_or_setting(engine))
    stats = None
    for event in controller.send(text):
        if isinstance(event, TextDelta) and not json_out:
            sys.stdout.write(sanitize_for_terminal(event.text))
            sys.stdout.flush()
        elif isinstance(event, GenerationStats):
            stats = event
    assert stats is not None
    if stats.dropped_tokens:  # said on stderr in either output mode: the answer saw part of the prompt
        typer.echo(f"anechat: {dropped_line(stats)}", err=True)
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
        sys.stdout.write(json_terminal_safe(json.dumps(record, ensure_ascii=False)) + "\n")
    else:
        sys.stdout.write("\n")
        typer.echo(sanitize_for_terminal(f"[{loaded.name} · {loaded.engine} · {loaded.runtime}] {stats_line(stats)}"), err=True)
    if stats.finish_reason == "error":
        raise typer.Exit(1)


def chat_help() -> str:
    from anechat.chat.commands import CHAT, command_list

    return f"Commands: {command_list(CHAT)} (/help says more). Ctrl+C stops an answer; Ctrl+D or /quit leaves."


def chat(
    model: Optional[str] = ModelOpt,
    engine: Optional[str] = EngineOpt,
    system: str = typer.Option("", "--system", help="System prompt."),
    max_tokens: int = typer.Option(512, "--max-tokens"),
    temp: Optional[float] = typer.Option(None, "--temp", help="Temperature (0 = greedy). Without --temp/--top-p/--top-k the model's own sampling defaults apply (its generation_config.json, else greedy with a mild repetition penalty)."),
    top_p: Optional[float] = typer.Option(None, "--top-p"),
    top_k: Optional[int] = typer.Option(None, "--top-k"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    resume: Optional[str] = typer.Option(None, "--resume", help="Continue a recorded session (id or prefix, see `anechat history list`) with its model, engine, system prompt and parameters."),
    no_history: bool = typer.Option(False, "--no-history", help="Do not record this chat in the history."),
    hosts: Optional[str] = HostsOpt,
    hostfile: Optional[Path] = HostfileOpt,
    shard: str = ShardOpt,
) -> None:
    """A plain line-based multi-turn chat (no TUI): /help lists its commands (/reset, /system TEXT, /regen, /params, /export, /quit). Recorded in the history."""
    from anechat.chat.controller import ChatController
    from anechat.safe_text import sanitize_for_terminal

    model_sampling = temp is None and top_p is None and top_k is None
    params = _params(max_tokens, temp or 0.0, 1.0 if top_p is None else top_p, top_k or 0, 0.0, 1.0, seed)
    history = None if no_history else _open_history()
    controller = ChatController(system_prompt=system, params=params, history=history, model_sampling=model_sampling)
    if resume:
        if history is None:
            raise fail("--resume needs the history: drop --no-history")
        recorded_model, recorded_engine = controller.open_session(resume)
        model, engine = model or recorded_model or None, engine or recorded_engine or None
        typer.echo(f"(resumed a session of {len(controller.messages)} messages)", err=True)
    use_hosts(hosts, hostfile, shard, [engine_or_setting(engine)])
    loaded = _load(controller, model, engine_or_setting(engine))
    typer.echo(sanitize_for_terminal(f"{loaded.name} on {loaded.engine} ({loaded.runtime}). {chat_help()}"), err=True)
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
    from anechat.safe_text import sanitize_for_terminal

    try:
        store = HistoryStore()
    except (HistoryError, OSError) as exc:
        warn(f"chat history is off ({exc})")
        return None
    if store.warning:
        warn(store.warning)
    return store


def _chat_turn(controller, line: str) -> bool:
    """Handle one line (a message or a command of the shared table); False means quit."""
    from anechat.chat.commands import CHAT, message_text, parse
    from anechat.engines.errors import AnechatError

    if not line.strip():
        return True
    try:
        command = parse(line, CHAT)
        if command is None:
            _stream_answer(lambda cancel: controller.send(message_text(line), cancel))
            return True
        return _run_command(controller, command)
    except AnechatError as exc:  # the chat goes on
        print_error(str(exc))
        return True
    finally:
        if warning := controller.take_history_warning():  # the history could not be saved: one line, once
            warn(warning)


def _run_command(controller, command) -> bool:
    """Act on one parsed command; False means quit."""
    from anechat.chat.commands import CHAT, apply_params, help_lines, params_line
    from anechat.chat.transcript import export_conversation
    from anechat.engines.errors import InvalidParameter

    name = command.name
    if name == "/quit":
        return False
    if name == "/reset":
        controller.new_chat()
        typer.echo("(conversation cleared)", err=True)
    elif name == "/system":
        controller.set_system_prompt(command.arg)
        typer.echo("(system prompt set)" if command.arg else "(system prompt cleared)", err=True)
    elif name == "/help":
        typer.echo("\n".join(help_lines(CHAT)), err=True)
    elif name == "/params":
        if command.value:
            controller.set_params(apply_params(controller.state.params, command.value))
        typer.echo(f"({params_line(controller.state.params)})", err=True)
    elif name == "/export":
        fmt, path = command.value
        typer.echo(f"(wrote {export_conversation(controller, fmt, path)})", err=True)
    elif name == "/regen":
        users = [i for i, m in enumerate(controller.messages) if m.role == "user"]
        if not users:
            raise InvalidParameter("nothing to regenerate yet: send a message first")
        text = controller.truncate_before(users[-1]).content
        _stream_answer(lambda cancel: controller.send(text, cancel))
    return True


def _stream_answer(start) -> None:
    """Stream the answer ``start(cancel)`` yields to stdout and its figures to stderr."""
    from anechat.engines.base import CancelToken, GenerationStats, TextDelta
    from anechat.engines.errors import AnechatError
    from anechat.formatting import dropped_line, stats_line
    from anechat.safe_text import sanitize_for_terminal

    cancel = CancelToken()
    sys.stdout.write("assistant> ")
    try:
        for event in start(cancel):
            if isinstance(event, TextDelta):
                sys.stdout.write(sanitize_for_terminal(event.text))
                sys.stdout.flush()
            elif isinstance(event, GenerationStats):
                sys.stdout.write("\n")
                if event.dropped_tokens:
                    typer.echo(f"[{dropped_line(event)}]", err=True)
                typer.echo(f"[{stats_line(event)}]", err=True)
    except KeyboardInterrupt:
        sys.stdout.write("\n")
        typer.echo("[stopped]", err=True)
    except AnechatError as exc:  # the chat goes on
        sys.stdout.write("\n")
        print_error(str(exc))
