"""The aiohttp server of ``anechat api``: its edge (guard, error shape, request log),
startup (load the ``-m`` model before listening) and a clean shutdown (unload on the
engine thread, free the thread, leave the in-use registry).
"""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from dataclasses import dataclass

from aiohttp import web

from anechat.chat.engine_thread import EngineThread
from anechat.api.errors import ApiError, error_response, http_error
from anechat.addresses import is_loopback
from anechat.api.guard import DEFAULT_MAX_BODY, Guard
from anechat.api.handlers import Handlers
from anechat.api.pool import ModelPool
from anechat.engines.errors import AnechatError

LOG_PREFIX = "anechat api: "


@dataclass(frozen=True)
class ServerOptions:
    model: str | None = None
    engine: str = "mlx"
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str | None = None
    allowed_origins: tuple[str, ...] = ()
    max_queue: int = 8
    sessions: int = 4  # prompt caches kept per model (sessions over the same weights)
    max_body: int = DEFAULT_MAX_BODY
    log_text: bool = False


def log(line: str) -> None:
    from anechat.safe_text import sanitize_for_terminal

    sys.stderr.write(LOG_PREFIX + sanitize_for_terminal(line) + "\n")
    sys.stderr.flush()


def build_app(options: ServerOptions, pool: ModelPool) -> web.Application:
    guard = Guard(
        api_key=options.api_key,
        allowed_origins=frozenset(o.rstrip("/") for o in options.allowed_origins),
        loopback=is_loopback(options.host),
        max_body=options.max_body,
    )

    @web.middleware
    async def edge(request: web.Request, handler) -> web.StreamResponse:
        started = time.perf_counter()
        request["log"] = info = {}
        try:
            refusal = guard.refusal(request.headers, request.content_length)
            if refusal is not None:
                raise refusal
            response = await handler(request)
        except AnechatError as exc:
            response = error_response(exc)
            info["error"] = exc.kind
        except web.HTTPException as exc:
            error = http_error(exc)
            response = error_response(error)
            info["error"] = error.kind
        except Exception as exc:  # a bug: one line in the log, OpenAI's shape to the client
            response = error_response(AnechatError(f"internal error: {type(exc).__name__}: {exc}"))
            info["error"] = f"internal {type(exc).__name__}: {exc}"
        body = getattr(response, "body", None)
        size = info.pop("out", None) or (len(body) if isinstance(body, bytes) else 0)
        details = " ".join(f"{k}={v}" for k, v in info.items() if k not in ("in",))
        log(
            f"{request.method} {request.path} {response.status} in={info.get('in', request.content_length or 0)}B "
            f"out={size}B {1000 * (time.perf_counter() - started):.0f}ms {details}".rstrip()
        )
        return response

    app = web.Application(middlewares=[edge], client_max_size=options.max_body)
    app.add_routes(Handlers(pool, log_text=options.log_text).routes())
    return app


async def _serve(options: ServerOptions, thread: EngineThread, pool: ModelPool) -> None:
    if options.model:
        slot = await pool.load(options.model, options.engine, trusted=True)
        log(f"loaded {slot.loaded.name} on {slot.loaded.engine} ({slot.loaded.runtime})")
    runner = web.AppRunner(build_app(options, pool), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, options.host, options.port)
        try:
            await site.start()
        except OSError as exc:
            raise ApiError("error", f"cannot listen on {options.host}:{options.port} ({exc.strerror or exc})", hint="pick another port with --port") from None
        host, port = runner.addresses[0][:2]
        shown = f"[{host}]" if ":" in host else host
        log(f"listening on http://{shown}:{port}/v1" + (" (API key required)" if options.api_key else ""))
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        log("stopping")
    finally:
        await runner.cleanup()


def serve(options: ServerOptions) -> None:
    """Run the API until SIGTERM or Ctrl+C; models are unloaded on the engine thread on the way out."""
    thread = EngineThread()
    pool = ModelPool(thread, default_engine=options.engine, max_queue=options.max_queue, sessions=options.sessions)
    try:
        asyncio.run(_serve(options, thread, pool))
    finally:
        thread.close(pool.unload_all)
