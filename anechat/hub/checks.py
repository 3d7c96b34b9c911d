"""What a hub server says, checked before it becomes a path, and the snapshot checked after a pull.

A hub (or anything answering at ``HF_ENDPOINT``) is untrusted: the commit, ETags and
file names it sends name folders and symlinks in the cache. Only these shapes pass:

- a commit: 40 hex characters (a git sha1);
- an ETag: 40 hex (a git blob id) or 64 hex (an LFS sha256), after stripping ``W/`` and quotes;
- a file name (or a revision name): relative ``/``-separated parts, none empty, ``.`` or
  ``..``, no backslash, no control characters.

Every refusal is one line naming the value, made terminal-safe.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from anechat.hub.errors import CacheEscape, UnsafeHubValue
from anechat.safe_text import sanitize_for_terminal

_COMMIT = re.compile(r"[0-9a-f]{40}")
_ETAG = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SHOWN = 120  # characters of a bad value quoted in the message


def shown(value: object) -> str:
    """``value`` as it may appear in a one-line message: quoted, shortened, terminal-safe."""
    text = sanitize_for_terminal(repr(value) if not isinstance(value, str) else value)
    text = text.replace("\n", "\u2424")  # one line, whatever the server sent
    if len(text) > _SHOWN:
        text = text[:_SHOWN] + "…"
    return f"'{text}'"


def _refuse(repo_id: str, what: str, value: object) -> UnsafeHubValue:
    return UnsafeHubValue(
        f"the hub sent an unsafe {what} for {repo_id}: {shown(value)}; nothing was downloaded",
        hint="check HF_ENDPOINT / the hub you pull from",
    )


def check_commit(repo_id: str, value: object) -> str:
    if not isinstance(value, str) or _COMMIT.fullmatch(value) is None:
        raise _refuse(repo_id, "commit (not 40 hex characters)", value)
    return value


def check_etag(repo_id: str, name: str, value: object) -> str:
    """The ETag as a blob name (``W/`` and quotes stripped), or refuse."""
    text = value if isinstance(value, str) else ""
    if text.startswith("W/"):
        text = text[2:]
    text = text.strip('"')
    if _ETAG.fullmatch(text) is None:
        raise _refuse(repo_id, f"ETag for {shown(name)} (not 40 or 64 hex characters)", value)
    return text


def is_safe_relative(name: object) -> bool:
    if not isinstance(name, str) or not name or _CONTROL.search(name) or "\\" in name or name.startswith("/"):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def check_file_name(repo_id: str, name: object) -> str:
    if not is_safe_relative(name):
        raise _refuse(repo_id, "file name", name)
    return name  # type: ignore[return-value]


def check_revision_name(repo_id: str, revision: str) -> str:
    """A branch / tag name becomes ``refs/<name>``: the same rule as a file name."""
    if not is_safe_relative(revision):
        raise UnsafeHubValue(f"{shown(revision)} is not a usable revision of {repo_id}", hint="use a branch, tag or commit after @")
    return revision


def _inside(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def escaping_entries(snapshot: Path, blobs: Path, unpacked: set[str]) -> list[Path]:
    """Entries of ``snapshot`` that do not resolve inside ``blobs`` (symlinks never followed).

    Regular files and folders are allowed only inside the Core ML parts this pull unpacked
    (``unpacked``: their folder names at the top of the snapshot).
    """
    bad: list[Path] = []
    if not snapshot.exists() and not snapshot.is_symlink():
        return bad
    if snapshot.is_symlink():
        return [snapshot]
    real_blobs = os.path.realpath(blobs)
    for root, dirs, files in os.walk(snapshot):  # does not follow symlinked folders
        for name in dirs + files:
            entry = Path(root) / name
            if entry.is_symlink():
                target = os.path.realpath(entry)
                if not (_inside(target, real_blobs) and os.path.isfile(target)):
                    bad.append(entry)
            elif entry.is_file() and entry.relative_to(snapshot).parts[0] not in unpacked:
                bad.append(entry)
    return bad


def ensure_contained(repo_id: str, snapshot: Path, blobs: Path, unpacked: set[str]) -> None:
    bad = escaping_entries(snapshot, blobs, unpacked)
    if bad:
        first = bad[0].relative_to(snapshot) if bad[0] != snapshot else bad[0].name
        raise CacheEscape(
            f"{repo_id}: {shown(str(first))} in the pulled snapshot points outside the cache's blobs/; "
            "the files of this pull were removed",
            hint="delete the model's cache folder and pull again from a trusted hub",
        )
