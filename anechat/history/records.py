"""What the history store hands back: plain dataclasses, easy to show or serialise."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

STATUSES = ("complete", "partial", "error")
SHORT_ID = 8  # characters of a session id shown to people; any unique prefix works


def iso(ts: float) -> str:
    """A timestamp as ISO 8601 in UTC, to the second."""
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def local_time(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


@dataclass(frozen=True)
class MessageRecord:
    id: int
    session_id: str
    role: str  # "system" | "user" | "assistant"
    content: str
    created: float  # unix seconds
    status: str = "complete"  # "complete" | "partial" | "error"
    model: str | None = None
    engine: str | None = None
    stats: dict | None = None  # GenerationStats.as_dict() without the text
    prompt_tokens: int | None = None
    generation_tokens: int | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["created"] = iso(self.created)
        return d


@dataclass(frozen=True)
class SessionSummary:
    id: str
    title: str
    created: float
    updated: float
    model: str
    engine: str
    message_count: int

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]

    def to_dict(self) -> dict:
        d = asdict(self)
        d["created"], d["updated"] = iso(self.created), iso(self.updated)
        return d


@dataclass(frozen=True)
class SessionRecord:
    """A whole session: what to restore (model, engine, system prompt, params) and its messages."""

    id: str
    title: str
    created: float
    updated: float
    model: str
    engine: str
    system_prompt: str
    params: dict
    messages: list[MessageRecord] = field(default_factory=list)

    @property
    def short_id(self) -> str:
        return self.id[:SHORT_ID]

    def conversation(self, *, include_system: bool = True) -> list[dict]:
        """The chat as ``[{"role", "content"}]`` to hand an engine (e.g. to warm its cache).

        Starts with the system prompt when there is one; answers that failed with no
        text are left out; partial answers are kept (the model said that much).
        """
        out: list[dict] = []
        if include_system and self.system_prompt:
            out.append({"role": "system", "content": self.system_prompt})
        for m in self.messages:
            if m.role == "assistant" and m.status == "error" and not m.content:
                continue
            out.append({"role": m.role, "content": m.content})
        return out

    def sampling_params(self):
        """``params`` as the engines' ``SamplingParams`` (keys it does not know are ignored)."""
        from dataclasses import fields

        from anechat.engines.base import SamplingParams

        known = {f.name for f in fields(SamplingParams)}
        return SamplingParams(**{k: v for k, v in self.params.items() if k in known})

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "title": self.title,
            "created": iso(self.created),
            "updated": iso(self.updated),
            "model": self.model,
            "engine": self.engine,
            "system_prompt": self.system_prompt,
            "params": dict(self.params),
            "messages": [m.to_dict() for m in self.messages],
        }


@dataclass(frozen=True)
class SearchHit:
    session_id: str
    session_title: str
    message_id: int
    role: str
    snippet: str  # the match with some words around it, on one line
    created: float

    def to_dict(self) -> dict:
        d = asdict(self)
        d["created"] = iso(self.created)
        return d


def auto_title(text: str, width: int = 60) -> str:
    """A session title from its first user message: one line, at most ``width`` characters."""
    line = " ".join(text.split())
    if len(line) <= width:
        return line
    return line[: width - 1].rstrip() + "…"


def snippet(text: str, needle: str, width: int = 80) -> str:
    """``width`` characters of ``text`` around the first case-insensitive ``needle``, on one line."""
    flat = " ".join(text.split())
    at = flat.casefold().find(" ".join(needle.split()).casefold())
    if at < 0 or len(flat) <= width:
        return flat[:width] + ("…" if len(flat) > width else "")
    start = max(0, at - (width - len(needle)) // 2)
    end = min(len(flat), start + width)
    start = max(0, end - width)
    return ("…" if start else "") + flat[start:end] + ("…" if end < len(flat) else "")
