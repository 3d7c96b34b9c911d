"""Folders that appear complete or not at all, and the process check that cleans up after
the writers that died. One writer for every folder anechat makes (MLX conversion, GGUF
import, Core ML conversion); it sits in the engine layer so the converters there use it too.

    with atomic_folder(target) as tmp:
        ... write every file into tmp ...
    # now target holds them all; on any error (or Ctrl+C) nothing is left behind
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

#: the scratch folders a writer makes beside its target: ``.<name>.<kind>-<pid>-<random>``
SCRATCH_KINDS = ("partial", "old")


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists (also when it belongs to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def folder_taken(target: Path) -> bool:
    """True when ``target`` exists and is not an empty folder (a writer would overwrite something)."""
    target = Path(target)
    return target.exists() and (not target.is_dir() or any(target.iterdir()))


def scratch_folder(target: Path, kind: str = "partial") -> Path:
    """A hidden sibling of ``target`` owned by this process: ``.<name>.<kind>-<pid>-<random>``."""
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def remove_stale_scratch(target: Path) -> None:
    """Delete the scratch folders beside ``target`` left by processes that are gone."""
    if not target.parent.is_dir():
        return
    for kind in SCRATCH_KINDS:
        for leftover in target.parent.glob(f".{target.name}.{kind}-*"):
            try:
                pid = int(leftover.name.rsplit(f".{kind}-", 1)[1].split("-", 1)[0])
            except ValueError:
                continue
            if not pid_alive(pid):
                shutil.rmtree(leftover, ignore_errors=True)


def _install(tmp: Path, target: Path, replace: bool) -> None:
    """Move the finished folder into place; ``target`` is never left half-replaced."""
    old = None
    if target.exists():
        if replace:
            old = scratch_folder(target, "old")
            target.rename(old)
        elif folder_taken(target):
            raise FileExistsError(f"{target} already exists (it appeared while writing)")
        else:
            target.rmdir()
    try:
        os.rename(tmp, target)  # fails if another process put a folder there meanwhile
    except OSError as exc:
        if old is not None and not target.exists():
            old.rename(target)
            old = None
        raise FileExistsError(f"{target} already exists (it appeared while writing)") from exc
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a fresh hidden folder beside ``target``; on success rename it to ``target``.

    On any error (or Ctrl+C) the folder is removed and ``target`` is untouched. Without
    ``replace`` an existing non-empty ``target`` is refused (FileExistsError) before and
    after the work: nothing of the person's is overwritten. With ``replace`` an existing
    ``target`` is swapped for the new one. Leftovers of writers that died are removed first.
    """
    target = Path(target).expanduser().absolute()
    if not replace and folder_taken(target):
        raise FileExistsError(f"{target} already exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_scratch(target)
    tmp = scratch_folder(target)
    tmp.mkdir()
    try:
        yield tmp
        _install(tmp, target, replace)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
