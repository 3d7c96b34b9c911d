"""The one error root, and the engine layer's typed errors.

Every error anechat raises on purpose derives from :class:`AnechatError`: engine
errors here, history errors (``anechat.history.errors``), hub errors
(``anechat.hub.errors``), conversion errors (``anechat.convert.errors``), catalog
refusals (``anechat.catalog.remove``). Each carries

- ``message``: what went wrong, one line;
- ``hint``: what to do about it (or None);
- ``kind``: a short machine-readable category (``--json`` output, the conversion
  child's report).

``str(error)`` is the one line a person reads: the message, then `` — hint``
when there is one. The CLI edge (``anechat.cli.errors``) prints it as
``anechat: <line>``; the app shows the same line. Nothing here should need a
traceback to be understood. This module sits in the engine layer so that every
floor can import it (the UI may import it too: it is part of the engine contract).
"""

from __future__ import annotations


def one_line(message: str, hint: str | None = None) -> str:
    """``message — hint`` (or the message alone): the text every error shows."""
    return f"{message} — {hint}" if hint else message


class AnechatError(Exception):
    """The root of every error anechat raises on purpose."""

    #: short machine-readable category; subclasses set their own
    kind = "error"

    def __init__(self, message: str, hint: str | None = None, kind: str | None = None) -> None:
        self.message = message
        self.hint = hint
        if kind:
            self.kind = kind
        super().__init__(one_line(message, hint))


class EngineError(AnechatError):
    """Base of every error the engine layer raises on purpose."""

    kind = "engine_error"


class ModelNotFound(EngineError):
    kind = "model_not_found"


class ModelFormatError(EngineError):
    """The folder exists but is not a model this engine can read (says what is missing)."""

    kind = "wrong_format"


class OutOfMemory(EngineError):
    kind = "out_of_memory"


class ContextOverflow(EngineError):
    kind = "context_overflow"

    def __init__(self, needed: int, limit: int, *, hint: str | None = None) -> None:
        self.needed = needed
        self.limit = limit
        super().__init__(
            f"the conversation needs {needed} tokens but the model's context holds {limit}",
            hint=hint or "shorten the prompt, start a new chat, or load the model with a larger context",
        )


class BackendUnavailable(EngineError):
    kind = "backend_unavailable"


class InvalidParameter(EngineError):
    kind = "invalid_parameter"


class NotLoaded(EngineError):
    kind = "not_loaded"
