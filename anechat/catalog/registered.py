"""Model folders written outside the models folder (``anechat convert -o DIR``), listed in
``<data dir>/model-paths.json`` so that the catalog scan finds them wherever they are.

A path that no longer exists is skipped by the scan (and dropped at the next write).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

REGISTRY_FILE = "model-paths.json"


def registry_file() -> Path:
    from anechat.paths import data_dir

    return data_dir() / REGISTRY_FILE


def registered_paths() -> tuple[list[Path], list[str]]:
    """The registered folders that still exist, and a warning when the file is unreadable."""
    path = registry_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return [], []
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return [], [f"{path} cannot be read ({exc}); converted folders listed there are not shown"]
    items = data.get("paths") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return [], [f"{path} has no list of paths; converted folders listed there are not shown"]
    return [Path(p) for p in items if isinstance(p, str) and Path(p).exists()], []


def register_path(folder: Path) -> None:
    """Add ``folder`` (made absolute) to the registry; a no-op when it is already there."""
    folder = Path(folder).expanduser().resolve()
    known, _ = registered_paths()
    if folder in known:
        return
    target = registry_file()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{REGISTRY_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps({"paths": [str(p) for p in [*known, folder]]}, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, target)
