"""Rendering a model's chat template, which is untrusted code from a model folder.

The template runs in jinja2's immutable sandbox (no attribute tricks, no mutating
the conversation) with limits a hostile template cannot get around:

- ``range`` holds at most :data:`MAX_RANGE` items, and every item it hands out
  checks the clock, so nested loops stop at the deadline too;
- ``*`` and ``**`` may not build a value over :data:`MAX_OUTPUT_CHARS`;
- every call, every operator and every piece of output checks the deadline
  (:data:`TIME_LIMIT_S`) and the output's length.

Any failure while rendering is one line: a ModelFormatError.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any

from anechat.engines.errors import ModelFormatError

TIME_LIMIT_S = 2.0
MAX_RANGE = 100_000
MAX_OUTPUT_CHARS = 4_000_000
_CHECK_EVERY = 256  # range items between two looks at the clock


class _Exceeded(Exception):
    pass


def _sandbox(deadline: float):
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def check_time() -> None:
        if time.monotonic() > deadline:
            raise _Exceeded(f"it ran longer than {TIME_LIMIT_S:g} s")

    def bounded_range(*args: int):
        items = range(*args)
        if len(items) > MAX_RANGE:
            raise _Exceeded(f"range() of {len(items)} items (at most {MAX_RANGE})")
        for n, item in enumerate(items):
            if n % _CHECK_EVERY == 0:
                check_time()
            yield item

    class Limited(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})

        def call(__self, __context, __obj, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 (jinja's signature)
            check_time()
            return super().call(__context, __obj, *args, **kwargs)

        def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
            check_time()
            if operator == "**" and isinstance(right, int) and isinstance(left, int) and abs(left) > 1 and right > 64:
                raise _Exceeded(f"{left} ** {right} is too large")
            if operator == "*" and isinstance(left, (int, float)) and isinstance(right, (str, list, tuple)):
                left, right = right, left
            if operator == "*" and isinstance(left, (str, list, tuple)) and isinstance(right, int):
                if len(left) * right > MAX_OUTPUT_CHARS:
                    raise _Exceeded(f"a value of {len(left) * right} items (at most {MAX_OUTPUT_CHARS})")
            return super().call_binop(context, operator, left, right)

    env = Limited(trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"])
    env.globals["range"] = bounded_range
    env.filters["tojson"] = lambda value, indent=None, **_: json.dumps(value, indent=indent, ensure_ascii=False)
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env, check_time


def _raise_exception(message: str) -> None:
    from jinja2 import TemplateError

    raise TemplateError(message)


def render_chat_template(source: str, **variables: Any) -> str:
    """``source`` rendered with ``variables``, within the limits above."""
    from jinja2 import TemplateError

    env, check_time = _sandbox(time.monotonic() + TIME_LIMIT_S)
    out: list[str] = []
    size = 0
    try:
        for piece in env.from_string(source).generate(**variables):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise _Exceeded(f"its output passed {MAX_OUTPUT_CHARS} characters")
            check_time()
            out.append(piece)
    except _Exceeded as exc:
        raise ModelFormatError(f"the model's chat template was stopped: {exc}",
                               hint="fix or replace chat_template in the model folder") from None
    except TemplateError as exc:
        raise ModelFormatError(f"the model's chat template refused this conversation: {_one_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 — untrusted code: any failure is the model folder's
        raise ModelFormatError(f"the model's chat template failed: {type(exc).__name__}: {_one_line(exc)}",
                               hint="fix or replace chat_template in the model folder") from None
    return "".join(out)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
