"""Which models running anechat processes have loaded, so ``anechat models rm`` can refuse.

A process that loads a model calls ``mark_loaded(path)`` (a context manager, or
``register_loaded`` / ``unregister_loaded``); that writes a small file under
``<data dir>/loaded/``. ``loaded_elsewhere(path)`` lists the other live processes
that hold ``path``; files of processes that died are ignored and cleaned up.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from pathlib import Path
from typing import Iterator

from anechat.engines.files import pid_alive


def _folder() -> Path:
    from anechat.paths import data_dir

    return data_dir() / "loaded"


def _key(path: Path | str) -> str:
    try:
        return str(Path(path).expanduser().resolve())
    except OSError:
        return str(path)


def register_loaded(path: Path | str) -> str:
    """Record that this process has ``path`` loaded; returns a token for ``unregister_loaded``."""
    folder = _folder()
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{token}.json").write_text(json.dumps({"pid": os.getpid(), "path": _key(path)}))
    except OSError:
        pass  # best effort: a data folder that cannot be written must not stop a model from loading
    return token


def unregister_loaded(token: str) -> None:
    with contextlib.suppress(OSError):
        (_folder() / f"{token}.json").unlink()


@contextlib.contextmanager
def mark_loaded(path: Path | str) -> Iterator[None]:
    token = register_loaded(path)
    try:
        yield
    finally:
        unregister_loaded(token)


def loaded_elsewhere(path: Path | str) -> list[int]:
    """Process ids (other than this one) that have ``path`` loaded."""
    folder = _folder()
    if not folder.is_dir():
        return []
    key, pids = _key(path), []
    for marker in folder.glob("*.json"):
        try:
            data = json.loads(marker.read_text())
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not pid_alive(pid):
            with contextlib.suppress(OSError):
                marker.unlink()
            continue
        if pid != os.getpid() and data.get("path") == key:
            pids.append(pid)
    return sorted(set(pids))
