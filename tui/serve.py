"""``anechat serve``: the same app in a browser, through textual-serve, behind a guard.

Every browser tab starts its own ``python -m anechat.tui`` process (with the config
file's defaults). :mod:`anechat.tui.serve_guard` stands in front of textual-serve as an
aiohttp middleware: a secret token per run (or ``ANECHAT_SERVE_TOKEN``) in the printed
URL, ``Host`` and ``Origin`` checked, a cap on open sessions. It binds loopback unless
``--allow-remote`` says otherwise, and then warns that the traffic is plain HTTP.
"""

from __future__ import annotations

import os
import shlex
import sys

import typer

from anechat.addresses import is_loopback, is_wildcard
from anechat.engines.errors import BackendUnavailable

from anechat.tui.serve_guard import Guard, new_token, served_names

TOKEN_ENV = "ANECHAT_SERVE_TOKEN"


def app_command() -> str:
    return f"{shlex.quote(sys.executable)} -m anechat.tui"


def _url_host(host: str) -> str:
    if is_wildcard(host):
        import socket

        return socket.gethostname()
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_address(host: str, port: int, *, allow_remote: bool, max_sessions: int) -> None:
    """ValueError, one line, for an address or a limit ``serve`` must not run with."""
    if not 1 <= port <= 65535:
        raise ValueError(f"--port must be between 1 and 65535, not {port}")
    if max_sessions < 1:
        raise ValueError(f"--max-sessions must be at least 1, not {max_sessions}")
    if not is_loopback(host) and not allow_remote:
        raise ValueError(
            f"refusing to serve on {host}: it is reachable from other machines; "
            "use an SSH tunnel to 127.0.0.1 (ssh -L), or pass --allow-remote"
        )


def serve(host: str = "127.0.0.1", port: int = 8000, *, allow_remote: bool = False, max_sessions: int = 4) -> None:
    """Serve the app on ``host:port`` until Ctrl+C."""
    check_address(host, port, allow_remote=allow_remote, max_sessions=max_sessions)
    remote = not is_loopback(host)
    try:
        from textual_serve.server import Server
    except ImportError as exc:
        raise BackendUnavailable(
            f"textual-serve is not installed ({exc})", hint='install it with: pip install "anechat[serve]"'
        ) from exc

    token = os.environ.get(TOKEN_ENV, "").strip() or new_token()
    guard = Guard(token=token, port=port, names=served_names(host), max_sessions=max_sessions)
    url = f"http://{_url_host(host)}:{port}/?token={token}"

    class GuardedServer(Server):
        async def _make_app(self):
            app = await super()._make_app()
            app.middlewares.append(guard.middleware)
            return app

        async def handle_index(self, request):
            # the page's own URLs (static files, the websocket) go to the Host the browser used,
            # which the guard has checked, so its token cookie travels with them
            self.public_url = f"http://{request.host}"
            return await super().handle_index(request)

        async def on_startup(self, app) -> None:  # textual-serve's banner would print the URL without its token
            return None

        def serve(self, debug: bool = False) -> None:  # textual-serve's, with the URL printed once it listens
            import asyncio
            import signal

            from aiohttp import web

            self.debug = debug
            self.initialize_logging()
            loop = asyncio.new_event_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, self.request_exit)
            web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False, loop=loop, print=lambda *_: announce())

    def announce() -> None:
        if remote:
            print(
                f"anechat serve: WARNING: {host}:{port} is reachable from other machines over plain HTTP "
                "(the token and everything typed travel unencrypted); prefer an SSH tunnel: "
                f"ssh -L {port}:127.0.0.1:{port} this-machine, then serve on 127.0.0.1",
                file=sys.stderr,
                flush=True,
            )
        print(f"anechat serve: open {url}  (Ctrl+C to stop; at most {max_sessions} sessions)", flush=True)

    GuardedServer(app_command(), host=host, port=port, title="anechat").serve()


def _serve_command(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (keep it on localhost)."),
    port: str = typer.Option("8000", "--port", metavar="PORT", help="Port to listen on (1-65535)."),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --host (plain HTTP: prefer an SSH tunnel)."),
    max_sessions: int = typer.Option(4, "--max-sessions", help="Most app sessions (browser tabs) open at once."),
) -> None:
    """Serve the app to a browser on localhost through textual-serve (token in the printed URL)."""
    from anechat.cli.errors import fail
    from anechat.safe_text import sanitize_for_terminal

    if not port.strip().isdigit():
        raise fail(f"--port must be a number between 1 and 65535, not '{sanitize_for_terminal(port)}'")
    try:
        check_address(host, int(port), allow_remote=allow_remote, max_sessions=max_sessions)
    except ValueError as exc:
        raise fail(sanitize_for_terminal(str(exc))) from None
    serve(host=host, port=int(port), allow_remote=allow_remote, max_sessions=max_sessions)


def register(app: typer.Typer) -> None:
    app.command(name="serve", help="Serve the app to a browser on localhost (textual-serve, token in the URL).")(_serve_command)
