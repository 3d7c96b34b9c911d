"""`anechat api`: an OpenAI-compatible HTTP API over every engine (see anechat.api)."""

from __future__ import annotations

from typing import List, Optional

from pathlib import Path

import typer

from anechat.cli.errors import fail
from anechat.cli.ranks import HostfileOpt, HostsOpt, ShardOpt, use_hosts
from anechat.cli.run import EngineOpt, ModelOpt, engine_or_setting

API_HELP = (
    "Serve local models over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions, "
    "/v1/models, /health). Loopback only unless --host and an API key are given."
)


def api(
    model: Optional[str] = ModelOpt,
    engine: Optional[str] = EngineOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on. Not loopback: needs --api-key."),
    port: int = typer.Option(8080, "--port", help="Port to listen on (0: any free port, printed at start)."),
    api_key: Optional[str] = typer.Option(
        None, "--api-key", envvar="ANECHAT_API_KEY", help="Every request must send Authorization: Bearer KEY. Default: the config file's api_key."
    ),
    allow_origin: List[str] = typer.Option([], "--allow-origin", help="A web page origin allowed to call the API (repeatable)."),
    max_queue: int = typer.Option(8, "--max-queue", help="Requests that may wait for a busy model; beyond: 429."),
    sessions: int = typer.Option(4, "--sessions", help="Conversations per model whose prompt cache is kept (least recently used dropped first)."),
    max_body: int = typer.Option(1 << 20, "--max-body", help="Largest request body in bytes; beyond: 413."),
    log_text: bool = typer.Option(False, "--log-text", help="Also log the start of each prompt and answer."),
    hosts: Optional[str] = HostsOpt,
    hostfile: Optional[Path] = HostfileOpt,
    shard: str = ShardOpt,
) -> None:
    """Serve local models over an OpenAI-compatible HTTP API."""
    from anechat.api.guard import bind_refusal
    from anechat.api.server import ServerOptions, serve
    from anechat.cli.run import check_engines
    from anechat.config import load_config

    api_key = api_key or load_config().api_key
    refusal = bind_refusal(host, api_key)
    if refusal:
        raise fail(refusal)
    if max_queue < 0 or sessions < 1 or max_body < 1 or not 0 <= port <= 65535:
        raise fail("--max-queue must be >= 0, --sessions >= 1, --max-body >= 1 and --port in 0..65535")
    if engine:
        check_engines([engine])
    use_hosts(hosts, hostfile, shard, [engine_or_setting(engine)])
    serve(
        ServerOptions(
            model=model,
            engine=engine_or_setting(engine),
            host=host,
            port=port,
            api_key=api_key or None,
            allowed_origins=tuple(allow_origin),
            max_queue=max_queue,
            sessions=sessions,
            max_body=max_body,
            log_text=log_text,
        )
    )
