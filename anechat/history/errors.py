"""Errors the history store raises on purpose. ``str(error)`` is one line a person can act on."""

from __future__ import annotations

from anechat.engines.errors import AnechatError


class HistoryError(AnechatError):
    """Base of every error the history store raises on purpose."""

    kind = "history_error"


class UnknownSession(HistoryError):
    kind = "unknown_session"


class AmbiguousSession(HistoryError):
    """A session id prefix matched more than one session."""

    kind = "ambiguous_session"


class UnknownMessage(HistoryError):
    kind = "unknown_message"


class InvalidInput(HistoryError):
    """Empty text, an unknown status, a title that is not text..."""

    kind = "invalid_input"


class StorageError(HistoryError):
    """SQLite could not read or write (disk full, locked for too long, read-only file...)."""

    kind = "storage_error"


class SchemaTooNew(HistoryError):
    """The database was written by a newer anechat; this one will not touch it."""

    kind = "schema_too_new"
