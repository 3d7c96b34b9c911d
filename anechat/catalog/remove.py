"""Removing a model from disk, safely.

- The built-in GGUF ships inside a Python package and is never removed; removing the
  converted default model deletes only the converted folder (made again on first use).
- A model loaded by this process (``is_loaded``) is unloaded first when an ``unload``
  callback is given, else refused; one loaded by another anechat process is refused.
- A folder is first renamed to a hidden sibling, then deleted, so an interrupted
  removal never leaves a half-deleted folder that looks like a model. A hub-cache model
  loses its ``refs`` and marker files (config.json, meta.yaml) first for the same reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from anechat.engines.errors import AnechatError

from anechat.catalog.entry import ModelEntry
from anechat.catalog.inuse import loaded_elsewhere
from anechat.catalog.sizes import disk_size


class ModelInUse(AnechatError):
    kind = "model_in_use"


class RemoveRefused(AnechatError):
    kind = "remove_refused"


@dataclass(frozen=True)
class Removed:
    name: str
    path: Path
    freed_bytes: int | None
    note: str = ""


def _hub_repo_folder(snapshot: Path) -> Path:
    """``.../models--org--name/snapshots/<commit>`` -> ``.../models--org--name``."""
    repo = snapshot.parent.parent
    if snapshot.parent.name != "snapshots" or not repo.name.startswith("models--"):
        raise RemoveRefused(f"{snapshot} is not inside a Hugging Face cache repo folder; not removing it")
    return repo


def _remove_hub_repo(repo: Path) -> None:
    shutil.rmtree(repo / "refs", ignore_errors=True)
    for snapshot in (repo / "snapshots").glob("*"):
        for marker in ("config.json", "meta.yaml"):
            try:
                (snapshot / marker).unlink()
            except FileNotFoundError:
                pass
    shutil.rmtree(repo)
    shutil.rmtree(repo.parent / ".locks" / repo.name, ignore_errors=True)


def _remove_path(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
        return
    doomed = path.with_name(f".{path.name}.removing-{uuid.uuid4().hex[:8]}")
    try:
        os.replace(path, doomed)
    except OSError:
        doomed = path
    shutil.rmtree(doomed)


def _refuse_dangerous(path: Path) -> None:
    from anechat.paths import models_dir

    resolved = path.expanduser().resolve()
    protected = {Path("/"), Path.home().resolve(), models_dir().expanduser().resolve()}
    if resolved in protected or resolved.is_mount():
        raise RemoveRefused(f"refusing to remove {resolved}: it is not a single model folder")


def remove_model(
    entry: ModelEntry,
    *,
    is_loaded: Callable[[ModelEntry], bool] | None = None,
    unload: Callable[[], None] | None = None,
) -> Removed:
    """Delete ``entry`` from disk and say what was freed.

    ``is_loaded(entry)`` lets the app say that it has this model loaded: with
    ``unload`` it is unloaded first, without it the removal is refused.
    """
    from anechat.catalog import default_model as dm
    note = ""
    if entry.source == "builtin":
        converted = dm.default_model_dir()
        if entry.needs_conversion or not converted.exists():
            raise RemoveRefused(
                f"{entry.name} is the built-in model shipped with anechat; it cannot be removed",
                hint="it takes no space beyond the installed package until first use",
            )
        entry = entry.with_(path=converted)
        note = "the shipped GGUF stays; it is converted again on first use"
    if is_loaded is not None and is_loaded(entry):
        if unload is None:
            raise ModelInUse(f"{entry.name} is loaded in the app", hint="switch to another model or unload it first")
        unload()
    others = loaded_elsewhere(entry.path)
    if others:
        raise ModelInUse(
            f"{entry.name} is loaded by another anechat process (pid {', '.join(map(str, others))})",
            hint="quit that chat or switch it to another model first",
        )
    freed = disk_size(entry.path)
    if entry.source == "hf-cache":
        repo = _hub_repo_folder(entry.path)
        freed = disk_size(repo / "blobs") or freed
        _remove_hub_repo(repo)
    else:
        if not entry.path.exists() and not entry.path.is_symlink():
            raise RemoveRefused(f"{entry.path} no longer exists")
        if entry.path.is_symlink():
            note = f"removed the link only; its target {os.path.realpath(entry.path)} is untouched"
        else:
            _refuse_dangerous(entry.path)
        _remove_path(entry.path)
    return Removed(entry.name, entry.path, freed, note)
