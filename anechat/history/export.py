"""A session as Markdown (to read or share) or JSON (everything, to process)."""

from __future__ import annotations

import json

from anechat.formatting import stats_line
from anechat.safe_text import json_terminal_safe

from anechat.history.errors import InvalidInput
from anechat.history.records import SessionRecord, iso

FORMATS = ("md", "json")
JSON_FORMAT = "anechat-history"
JSON_VERSION = 1


def render(record: SessionRecord, format: str = "md") -> str:
    if format == "md":
        return to_markdown(record)
    if format == "json":
        return to_json(record)
    raise InvalidInput(f"unknown export format {format!r}: use md or json")


def to_json(record: SessionRecord) -> str:
    """Every field of the session and its messages (timestamps in ISO 8601 UTC).
    Control characters inside the text are escaped, so it is safe to print."""
    doc = {"format": JSON_FORMAT, "version": JSON_VERSION, "session": record.to_dict()}
    return json_terminal_safe(json.dumps(doc, ensure_ascii=False, indent=2)) + "\n"


def to_markdown(record: SessionRecord) -> str:
    lines = [f"# {record.title or 'Untitled chat'}", ""]
    lines.append(f"- Session: `{record.id}`")
    if record.model or record.engine:
        lines.append(f"- Model: {record.model or '?'}" + (f" ({record.engine})" if record.engine else ""))
    lines.append(f"- Created: {iso(record.created)} · updated: {iso(record.updated)}")
    if record.params:
        lines.append("- Parameters: " + ", ".join(f"{k}={v}" for k, v in record.params.items()))
    if record.system_prompt:
        lines += ["", "## System prompt", "", record.system_prompt]
    for m in record.messages:
        heading = m.role.capitalize()
        if m.role == "assistant" and m.status != "complete":
            heading += " (stopped before the end)" if m.status == "partial" else " (failed)"
        if m.role == "assistant" and (m.engine or m.model):
            heading += " — " + " · ".join(x for x in (m.engine, m.model) if x)
        lines += ["", f"## {heading}", "", m.content if m.content else "_(no text)_"]
        summary = stats_line(m.stats, engine=m.engine, model=m.model)
        if summary:
            lines += ["", f"_{summary}_"]
    return "\n".join(lines) + "\n"
