"""Chat history: sessions and messages in SQLite that survive crashes, races and damaged files.

Start with :class:`HistoryStore` (store.py; an answer written as it streams in
answers.py). The schema and its migrations live in
schema.py, opening/recovery of the database file in recovery.py, export in export.py;
a chat loop records through recorder.py (ChatRecorder), which keeps what a full or
read-only disk cannot take and writes it when it can.
"""

from anechat.history.errors import (
    AmbiguousSession,
    HistoryError,
    InvalidInput,
    SchemaTooNew,
    StorageError,
    UnknownMessage,
    UnknownSession,
)
from anechat.history.records import MessageRecord, SearchHit, SessionRecord, SessionSummary
from anechat.history.answers import STATUS_FOR_FINISH
from anechat.history.store import DB_NAME, HistoryStore, default_path

__all__ = [
    "AmbiguousSession",
    "DB_NAME",
    "HistoryError",
    "HistoryStore",
    "InvalidInput",
    "MessageRecord",
    "STATUS_FOR_FINISH",
    "SchemaTooNew",
    "SearchHit",
    "SessionRecord",
    "SessionSummary",
    "StorageError",
    "UnknownMessage",
    "UnknownSession",
    "default_path",
]
