"""Convert a catalog model for another engine: MLX (mlx-lm, optionally quantized) or
Core ML (ANEMLL layout, LUT palettization). Shared by ``anechat convert`` and the app's
models screen, so both name their output folders and check their sources the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from anechat.engines.errors import BackendUnavailable, InvalidParameter, ModelFormatError

TARGETS = ("mlx", "coreml")

ProgressFn = Callable[[str, "float | None"], None]


@dataclass(frozen=True)
class ConvertRequest:
    """What to convert to. ``bits``/``mixed``/``group_size`` are for mlx; the rest for coreml
    (``group_size`` there is the LUT group size)."""

    to: str
    bits: int | None = None
    group_size: int | None = None
    mixed: str | None = None
    context: int = 512
    batch: int = 64
    chunks: int = 1
    lut_ffn: int | None = None
    lut_lmhead: int | None = None
    lut_embeddings: int | None = None

    def checked(self) -> "ConvertRequest":
        if self.to not in TARGETS:
            raise InvalidParameter(f"--to {self.to!r} is invalid: use mlx or coreml")
        return self


def default_out(name: str, request: ConvertRequest) -> Path:
    """``<models dir>/<name>-mlx-4bit``, ``…-coreml-ctx512-lut6`` and so on (the names the
    engine switcher recognises as conversions of ``name``)."""
    from anechat.paths import models_dir

    if request.to == "mlx":
        suffix = f"mlx-{request.mixed}" if request.mixed else f"mlx-{request.bits}bit" if request.bits else "mlx"
    else:
        suffix = f"coreml-ctx{request.context}" + (f"-lut{request.lut_ffn}" if request.lut_ffn else "-fp16")
    return models_dir() / f"{name}-{suffix}"


def check_source(entry) -> None:
    """Raise ModelFormatError unless ``entry`` is something convert reads (HF / MLX folder,
    or the built-in GGUF)."""
    if entry.format not in ("mlx", "hf", "gguf") or (entry.format == "gguf" and entry.source != "builtin"):
        raise ModelFormatError(f"{entry.name} is a {entry.format} model; convert needs a Hugging Face or MLX folder")


def convert_model(entry, request: ConvertRequest, out: Path | None = None, progress: ProgressFn | None = None) -> Path:
    """Convert catalog ``entry`` as ``request`` says, into ``out`` (default: :func:`default_out`).

    The output folder appears complete or not at all; returns it.
    """
    request.checked()
    check_source(entry)
    source = entry.ensure_local(progress)
    target = Path(out) if out else default_out(entry.name, request)
    if request.to == "mlx":
        from anechat.convert.mlx import convert_to_mlx

        return convert_to_mlx(
            source, target, bits=request.bits, group_size=request.group_size or 64, mixed=request.mixed, progress=progress
        )
    try:
        from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml
    except ImportError as exc:
        raise BackendUnavailable(
            f"the Core ML converter needs the coreml extra ({exc})", hint='pip install "anechat[coreml]"'
        ) from None
    options = CoreMLConvertOptions(
        context_length=request.context,
        batch_size=request.batch,
        num_chunks=request.chunks,
        lut_ffn=request.lut_ffn,
        lut_lmhead=request.lut_lmhead,
        lut_embeddings=request.lut_embeddings,
        group_size=request.group_size or 16,
    )
    return convert_to_coreml(source, target, options, progress)


def check_model(entry, folder: Path, progress: ProgressFn | None = None) -> dict:
    """Measure a Core ML conversion of ``entry`` against its float source (top-1 agreement,
    perplexity, size); the figures are also written into ``folder`` (quality.json)."""
    from anechat.engines.coreml.convert.check import check_conversion

    return check_conversion(folder, entry.ensure_local(progress), progress)
