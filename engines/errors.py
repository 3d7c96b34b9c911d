"""Typed engine errors. Each carries a message a person can act on.

The CLI and the app print ``str(error)`` as one line; nothing here should need a
traceback to be understood.
"""

from __future__ import annotations


class EngineError(Exception):
    """Base of every error the engine layer raises on purpose."""

    #: short machine-readable kind, used by the CLI's ``--json`` error output
    kind = "engine_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message = message
        self.hint = hint
        super().__init__(message if not hint else f"{message} — {hint}")


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
