"""The marker file a GGUF import leaves in its folder (``anechat-import.json``).

The importer (:mod:`anechat.convert.gguf.importer`) writes it last; the catalog
reads it to tell a finished, current import from anything else in a few ``stat``
calls, without importing the converter.
"""

from __future__ import annotations

import json
from pathlib import Path

MARKER = "anechat-import.json"
#: bumped when the importer's output changes; older imports are made again
IMPORTER_VERSION = 1
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json")


def read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current_import(folder: Path, source: Path) -> bool:
    """True when ``folder`` is a complete import of ``source`` by this importer version."""
    folder, source = Path(folder), Path(source)
    marker = read_marker(folder)
    if not marker or marker.get("importer_version") != IMPORTER_VERSION:
        return False
    try:
        if marker.get("source_bytes") != source.stat().st_size:
            return False
        if (folder / "model.safetensors").stat().st_size != marker.get("weights_bytes"):
            return False
    except OSError:
        return False
    return all((folder / name).is_file() for name in MODEL_FILES)
