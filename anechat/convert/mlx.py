"""MLX conversion and quantization through mlx-lm, written atomically."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Callable

from anechat.convert.errors import TargetExists
from anechat.engines.errors import BackendUnavailable, InvalidParameter, ModelFormatError
from anechat.engines.files import atomic_folder, folder_taken

MIXED_RECIPES = ("mixed_2_6", "mixed_3_4", "mixed_3_6", "mixed_4_6")


def default_dtype() -> str:
    """float32 on CPU (bf16 quantized matmuls lose accuracy there); float16 on Apple GPUs."""
    return "float16" if sys.platform == "darwin" else "float32"


def convert_to_mlx(
    src: Path,
    out: Path,
    *,
    bits: int | None = None,
    group_size: int = 64,
    mixed: str | None = None,
    dtype: str | None = None,
    progress: Callable[[str, float | None], None] | None = None,
) -> Path:
    """Convert a Hugging Face / MLX folder to MLX, quantized to ``bits`` (4 or 8) or a mixed recipe."""
    if bits not in (None, 2, 3, 4, 5, 6, 8):
        raise InvalidParameter(f"--bits {bits} is not supported: use 4 or 8 (or 2, 3, 5, 6)")
    if group_size not in (32, 64, 128):
        raise InvalidParameter(f"--group-size {group_size} is not supported: use 32, 64 or 128")
    if mixed is not None and mixed not in MIXED_RECIPES:
        raise InvalidParameter(f"--mixed {mixed} is unknown: use one of {', '.join(MIXED_RECIPES)}")
    if folder_taken(Path(out).expanduser()):
        raise TargetExists(f"{out} already exists", hint="choose another output folder (-o) or remove it first")
    if not (Path(src) / "config.json").is_file():
        raise ModelFormatError(f"{src} has no config.json: it is not a Hugging Face or MLX model folder")
    try:
        from mlx_lm import convert as mlx_convert
    except ImportError as exc:
        raise BackendUnavailable(f"mlx-lm is not installed ({exc})", hint='pip install "anechat[mlx]"') from exc
    report = progress or (lambda step, fraction=None: None)
    with atomic_folder(out) as tmp:
        report("loading and converting", 0.1)
        work = tmp / "model"
        with contextlib.redirect_stdout(io.StringIO()):  # mlx-lm prints its own [INFO] lines
            mlx_convert(
                str(src),
                str(work),
                quantize=bits is not None or mixed is not None,
                q_bits=bits,
                q_group_size=group_size,
                dtype=dtype or default_dtype(),
                quant_predicate=mixed,
            )
        report("saving", 0.95)
        for item in work.iterdir():
            item.rename(tmp / item.name)
        work.rmdir()
    report("done", 1.0)
    return Path(out)
