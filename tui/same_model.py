"""Whether two paths, or a saved model reference and the loaded model, name the same model folder."""

from __future__ import annotations

from pathlib import Path


def same_path(a: Path | str, b: Path | str) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return str(a) == str(b)


def is_loaded_model(loaded, model: str) -> bool:
    """``model`` (a reference, a name or a folder) is the ``loaded`` model."""
    return model in (loaded.ref, loaded.name) or same_path(model, loaded.path)
