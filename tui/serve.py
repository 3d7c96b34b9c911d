"""``anechat serve``: the same app in a browser on localhost, through textual-serve.

Every browser tab starts its own ``python -m anechat.tui`` process (with the config
file's defaults); nothing listens beyond ``host``.
"""

from __future__ import annotations

import shlex
import sys

from anechat.engines.errors import BackendUnavailable


def app_command() -> str:
    return f"{shlex.quote(sys.executable)} -m anechat.tui"


def serve(host: str = "127.0.0.1", port: int = 8000) -> None:
    try:
        from textual_serve.server import Server
    except ImportError as exc:
        raise BackendUnavailable(
            f"textual-serve is not installed ({exc})", hint='install it with: pip install "anechat[serve]"'
        ) from exc
    Server(app_command(), host=host, port=port, title="anechat").serve()
