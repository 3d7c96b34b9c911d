"""Size on disk of a model folder or file (symlinks into the hub's blob store followed)."""

from __future__ import annotations

import os
from pathlib import Path


def disk_size(path: Path) -> int | None:
    """Bytes of every file under ``path`` (a file's own size for a file); None if unreadable."""
    try:
        if path.is_file():
            return path.stat().st_size
        total = 0
        for root, _dirs, files in os.walk(path, onerror=None):
            for name in files:
                try:
                    total += os.stat(os.path.join(root, name)).st_size  # follows hub symlinks to blobs
                except OSError:
                    continue
        return total
    except OSError:
        return None
