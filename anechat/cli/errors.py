"""One clear line and a non-zero exit for every error a person can cause; exit 130 on Ctrl+C."""

from __future__ import annotations

import functools
import sys
from typing import Callable, TypeVar

import typer

from anechat.safe_text import sanitize_for_terminal

F = TypeVar("F", bound=Callable)


def fail(message: str, code: int = 1) -> "typer.Exit":
    typer.echo(f"anechat: {sanitize_for_terminal(message)}", err=True)
    return typer.Exit(code)


def friendly_errors(func: F) -> F:
    """Wrap a command: EngineError / OSError / ValueError -> one line on stderr, exit 1."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from anechat.engines.errors import EngineError

        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except KeyboardInterrupt:
            sys.stdout.flush()
            typer.echo("\ninterrupted", err=True)
            raise typer.Exit(130) from None
        except EngineError as exc:
            raise fail(str(exc)) from None
        except (OSError, ValueError) as exc:
            raise fail(f"{type(exc).__name__}: {exc}") from None

    return wrapper  # type: ignore[return-value]
