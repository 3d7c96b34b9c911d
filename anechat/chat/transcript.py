"""The conversation on screen, written to a file (`/export` in the line chat and the app).

It is the conversation as it stands now (after edits and regenerations), in the
history's export formats (:mod:`anechat.history.export`): Markdown to read, JSON
with everything. ``anechat history export`` writes a recorded session instead.
"""

from __future__ import annotations

import time
from pathlib import Path

from anechat.engines.errors import InvalidParameter
from anechat.history.export import render
from anechat.history.records import MessageRecord, SessionRecord, auto_title


def conversation_record(controller) -> SessionRecord:
    """The controller's conversation as a session record (answers labelled with the loaded model)."""
    loaded = controller.loaded
    model, engine = (loaded.name, loaded.engine) if loaded else ("", "")
    now = time.time()
    messages = [
        MessageRecord(
            id=i,
            session_id=controller.session_id or "",
            role=m.role,
            content=m.content,
            created=now,
            model=model if m.role == "assistant" else None,
            engine=engine if m.role == "assistant" else None,
        )
        for i, m in enumerate(controller.messages)
    ]
    first_user = next((m.content for m in controller.messages if m.role == "user"), "")
    return SessionRecord(
        id=controller.session_id or "unsaved",
        title=auto_title(first_user) if first_user else "",
        created=now,
        updated=now,
        model=model,
        engine=engine,
        system_prompt=controller.state.system_prompt,
        params=vars(controller.state.params).copy(),
        messages=messages,
    )


def default_export_path(fmt: str, folder: Path | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return (folder or Path.cwd()) / f"anechat-chat-{stamp}.{fmt}"


def export_conversation(controller, fmt: str = "md", path: Path | None = None) -> Path:
    """Write the conversation as ``fmt`` (md or json) to ``path`` (default: a dated file
    in the current folder); returns where. Problems raise one line (InvalidParameter)."""
    if not controller.messages:
        raise InvalidParameter("nothing to export yet: the conversation is empty")
    target = path or default_export_path(fmt)
    if target.is_dir():
        target = default_export_path(fmt, target)
    text = render(conversation_record(controller), fmt)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InvalidParameter(f"cannot write {target}: {exc.strerror or exc}") from None
    return target
