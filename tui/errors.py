"""One line for a failure shown in the app: the message of a known error, or the type
and message of an unexpected one (never a traceback)."""

from __future__ import annotations

from anechat.engines.errors import AnechatError


def error_line(exc: BaseException) -> str:
    if isinstance(exc, AnechatError):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
