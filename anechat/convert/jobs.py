"""Convert a catalog model for another engine: MLX (mlx-lm, optionally quantized) or
Core ML (ANEMLL layout, LUT palettization). Shared by ``anechat convert`` and the app's
models screen, so both name their output folders and check their sources the same way.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from anechat.engines.errors import BackendUnavailable, InvalidParameter, ModelFormatError

TARGETS = ("mlx", "coreml", "coreai")

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
    lut_ffn_down: int | None = None
    lut_ffn_last: int | None = None
    dtype: str = "fp32"  # coreai
    compress: str = "none"  # coreai: none, lut8, lut6, lut4, int8, int4

    def checked(self) -> "ConvertRequest":
        if self.to not in TARGETS:
            raise InvalidParameter(f"--to {self.to!r} is invalid: use one of {', '.join(TARGETS)}")
        if self.to == "coreai":
            from anechat.engines.coreai.convert.options import CoreAIConvertOptions

            CoreAIConvertOptions(self.context, self.batch, self.dtype, self.compress, self.group_size or 32).check()
        return self


def default_out(name: str, request: ConvertRequest) -> Path:
    """``<models dir>/<name>-mlx-4bit``, ``…-coreml-ctx512-lut6`` and so on (the names the
    engine switcher recognises as conversions of ``name``)."""
    from anechat.paths import models_dir

    if request.to == "mlx":
        suffix = f"mlx-{request.mixed}" if request.mixed else f"mlx-{request.bits}bit" if request.bits else "mlx"
    elif request.to == "coreai":
        suffix = f"coreai-ctx{request.context}-{request.compress if request.compress != 'none' else request.dtype}"
    else:
        suffix = f"coreml-ctx{request.context}" + (f"-lut{request.lut_ffn}" if request.lut_ffn else "-fp16")
        # a mixed recipe told apart from the default one: -lut4-down4-last4 is a uniform 4-bit FFN
        suffix += "".join(f"-{name}{bits}" for name, bits in (("down", request.lut_ffn_down), ("last", request.lut_ffn_last)) if bits)
    return models_dir() / f"{name}-{suffix}"


def check_source(entry) -> None:
    """Raise ModelFormatError unless ``entry`` is something convert reads (HF / MLX folder,
    or the built-in GGUF)."""
    if entry.format not in ("mlx", "hf", "gguf") or (entry.format == "gguf" and entry.source != "builtin"):
        raise ModelFormatError(f"{entry.name} is a {entry.format} model; convert needs a Hugging Face or MLX folder")


def records_origin(convert: Callable[..., Path]) -> Callable[..., Path]:
    """After any conversion, whatever its target: write the source's identity into the result
    (``anechat-source.json``, read by the catalog to group a model's variants) and register a
    result outside the models folder so that the catalog finds it (``convert -o DIR``)."""

    @functools.wraps(convert)
    def converting(entry, request: ConvertRequest, out: Path | None = None, progress: ProgressFn | None = None) -> Path:
        done = convert(entry, request, out, progress)
        record_origin(entry, request, done)
        return done

    return converting


def record_origin(entry, request: ConvertRequest, done: Path) -> None:
    """Write ``done``'s origin: the root source of ``entry`` (a conversion of a conversion
    names the first source again), the target engine and the options."""
    from datetime import datetime, timezone

    from anechat import __version__
    from anechat.catalog.provenance import Origin, config_digest, write_origin
    from anechat.catalog.registered import register_path
    from anechat.convert.default_model import local_model_path
    from anechat.paths import models_dir

    source = Path(local_model_path(entry)).resolve()
    root = entry.origin
    write_origin(done, Origin(
        source_name=root.source_name if root else entry.name,
        source_path=root.source_path if root else str(source),
        engine=request.to,
        converter=f"anechat {__version__} convert --to {request.to}",
        options=_options_of(request),
        source_config_sha256=root.source_config_sha256 if root else config_digest(source),
        source_repo_id=root.source_repo_id if root else entry.repo_id,
        converted_from=str(source) if root else None,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    ))
    done = Path(done).resolve()
    if not done.is_relative_to(models_dir().expanduser().resolve()):
        register_path(done)


def _options_of(request: ConvertRequest) -> dict:
    """The options that apply to the request's target (mlx: bits, group size, mixed recipe)."""
    mlx_only = ("bits", "mixed")
    options = {k: v for k, v in asdict(request).items() if v is not None and k != "to"}
    if request.to == "mlx":
        return {k: v for k, v in options.items() if k in (*mlx_only, "group_size")}
    return {k: v for k, v in options.items() if k not in mlx_only}


@records_origin
def convert_model(entry, request: ConvertRequest, out: Path | None = None, progress: ProgressFn | None = None) -> Path:
    """Convert catalog ``entry`` as ``request`` says, into ``out`` (default: :func:`default_out`).

    The output folder appears complete or not at all; returns it.
    """
    from anechat.convert.default_model import local_model_path

    request.checked()
    check_source(entry)
    source = local_model_path(entry, progress)
    target = Path(out) if out else default_out(entry.name, request)
    if request.to == "mlx":
        from anechat.convert.mlx import convert_to_mlx

        return convert_to_mlx(
            source, target, bits=request.bits, group_size=request.group_size or 64, mixed=request.mixed, progress=progress
        )
    if request.to == "coreai":
        return _convert_coreai(source, target, request, progress)
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
        lut_ffn_down=request.lut_ffn_down,
        lut_ffn_last=request.lut_ffn_last,
        group_size=request.group_size,
    )
    return convert_to_coreml(source, target, options, progress)


def _convert_coreai(source: Path, target: Path, request: ConvertRequest, progress: ProgressFn | None) -> Path:
    try:
        from anechat.engines.coreai.convert import CoreAIConvertOptions, convert_to_coreai
    except ImportError as exc:
        raise BackendUnavailable(f"the Core AI converter needs the coreai extra ({exc})", hint='pip install "anechat[coreai]"') from None
    options = CoreAIConvertOptions(
        context_length=request.context,
        batch_size=request.batch,
        dtype=request.dtype,
        compress=request.compress,
        group_size=request.group_size or 32,
    )
    return convert_to_coreai(source, target, options, progress)


def check_model(entry, folder: Path, progress: ProgressFn | None = None) -> dict:
    """Measure a Core ML conversion of ``entry`` against its float source (top-1 agreement,
    perplexity, size); the figures are also written into ``folder`` (quality.json)."""
    from anechat.convert.default_model import local_model_path
    from anechat.engines.coreml.convert.check import check_conversion

    return check_conversion(folder, local_model_path(entry, progress), progress)
