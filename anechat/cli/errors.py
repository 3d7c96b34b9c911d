"""The CLI's one error edge: every error a person can cause becomes one line on stderr,
``anechat: <message> — <hint>``, and a non-zero exit (130 on Ctrl+C); never a traceback.
An error nobody foresaw (a bug) is one line too, saying so; ``ANECHAT_DEBUG=1`` shows
its traceback instead.

Every typer app of the CLI is made with ``cls=ErrorEdge``, so errors are caught
once, where a command is invoked; commands just raise (an
:class:`~anechat.engines.errors.AnechatError`, or ``fail(...)`` for a usage problem
they find themselves). ``print_error`` and ``warn`` are the only writers of these lines.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from anechat.engines.errors import AnechatError, one_line

PREFIX = "anechat: "
#: set to 1 to see an internal error's traceback
DEBUG_VARIABLE = "ANECHAT_DEBUG"
#: the exit code of an internal error (EX_SOFTWARE)
INTERNAL_ERROR = 70


def _safe(text: str) -> str:
    from anechat.safe_text import sanitize_for_terminal

    return sanitize_for_terminal(text)


def print_error(line: str) -> None:
    """The one error format: ``anechat: <line>`` on stderr (model and file text made safe)."""
    typer.echo(PREFIX + _safe(line), err=True)


def warn(line: str) -> None:
    typer.echo(f"{PREFIX}warning: {_safe(line)}", err=True)


def fail(message: str, hint: str | None = None, code: int = 1) -> typer.Exit:
    """Print one error line now and return the Exit to raise: ``raise fail("...")``."""
    print_error(one_line(message, hint))
    return typer.Exit(code)


@contextlib.contextmanager
def one_line_errors() -> Iterator[None]:
    """AnechatError / OSError / ValueError -> one line and exit 1; Ctrl+C -> exit 130; any
    other error -> one line that calls it a bug, exit 70 (its traceback with ANECHAT_DEBUG=1)."""
    try:
        yield
    except typer.Exit:
        raise
    except KeyboardInterrupt:
        sys.stdout.flush()
        typer.echo("\ninterrupted", err=True)
        raise typer.Exit(130) from None
    except AnechatError as exc:
        raise fail(str(exc)) from None
    except (OSError, ValueError) as exc:
        raise fail(f"{type(exc).__name__}: {exc}") from None
    except (TyperException, typer.Abort):  # usage errors: typer prints them itself
        raise
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        hint = f"this is a bug in anechat: run it again with {DEBUG_VARIABLE}=1 to see where, and report it"
        raise fail(f"internal error: {type(exc).__name__}: {exc}", hint, code=INTERNAL_ERROR) from None


class ErrorEdge(TyperGroup):
    """A typer group whose commands' errors go through :func:`one_line_errors`."""

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        with one_line_errors():
            return super().invoke(ctx)


def typer_app(**options) -> typer.Typer:
    """A typer app of this CLI: errors through the one edge, -h for help, no completion."""
    return typer.Typer(
        cls=ErrorEdge,
        add_completion=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
        **options,
    )
