"""First use of the built-in default model: its shipped GGUF becomes an MLX / Hugging Face
folder (once; later calls only check that the folder is current).

The catalog lists the built-in model with ``needs_conversion`` set until then
(:mod:`anechat.catalog.default_model` finds the GGUF); whoever loads or converts a
catalog entry asks :func:`local_model_path` for the folder on disk.
"""

from __future__ import annotations

from pathlib import Path

from anechat.catalog.default_model import default_model_dir, find_gguf
from anechat.catalog.entry import ModelEntry
from anechat.convert.gguf import Progress, ensure_imported
from anechat.engines.errors import ModelNotFound


def ensure_default_model(progress: Progress | None = None) -> Path:
    """The default model's folder, converting the GGUF first if needed.

    A fast no-op once converted. Safe if two processes call it at once.
    Raises ModelNotFound with the pip command when the wheel is missing.
    """
    gguf, reason = find_gguf()
    if gguf is None:
        raise ModelNotFound(reason)
    return ensure_imported(gguf, default_model_dir(), progress)


def local_model_path(entry: ModelEntry, progress: Progress | None = None) -> Path:
    """The model of ``entry`` on disk: converts the built-in GGUF on first use, else
    the entry's own folder (ModelFormatError for an entry anechat cannot use)."""
    if entry.needs_conversion:
        return ensure_default_model(progress)
    return entry.ensure_local()
