"""The result of format detection, and the one check that asks the installed mlx-lm."""

from __future__ import annotations

import ast
import functools
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Detection:
    format: str
    engines: tuple[str, ...] = ()
    quantization: str = ""
    parameters: int | None = None
    context_length: int | None = None
    architecture: str = ""
    reason: str = ""
    convertible: bool = False
    notes: tuple[str, ...] = ()
    details: dict = field(default_factory=dict)


def unsupported(reason: str, **known: object) -> Detection:
    return Detection(format="unsupported", reason=reason, **known)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=1)
def _mlx_lm_models() -> tuple[frozenset[str], dict[str, str]] | None:
    """Architectures of the installed mlx-lm, found without importing it (import pulls in MLX).

    Reads the ``mlx_lm/models`` folder and the literal ``MODEL_REMAPPING`` table of
    ``mlx_lm/utils.py``. None when mlx-lm is not installed.
    """
    try:
        spec = importlib.util.find_spec("mlx_lm")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    root = Path(list(spec.submodule_search_locations)[0])
    models = frozenset(p.stem for p in (root / "models").glob("*.py") if not p.stem.startswith("_"))
    remap: dict[str, str] = {}
    try:
        tree = ast.parse((root / "utils.py").read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "MODEL_REMAPPING" for t in node.targets):
                remap = ast.literal_eval(node.value)
    except (OSError, SyntaxError, ValueError):
        pass
    return models, remap


def mlx_lm_supports(model_type: str) -> bool:
    """True when the installed mlx-lm has this ``model_type`` (or mlx-lm is not installed: unknown)."""
    known = _mlx_lm_models()
    if known is None or not known[0]:
        return True
    models, remap = known
    return model_type in models or remap.get(model_type, "") in models
