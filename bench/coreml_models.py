"""Core ML conversions of the default model for the bench scripts, cached under the models dir.

``<models>/smollm2-135m-instruct-coreml-<variant>`` with a hidden sidecar
``.<folder>.conversion.json`` recording how long the conversion took.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from anechat.engines.coreml.convert.check import folder_bytes  # noqa: F401  (the model's files, not its load cache)
from anechat.engines.coreml.convert.options import RECOMMENDED

VARIANTS = {
    "fp16": {},
    "lut6": {"lut_ffn": 6, "lut_lmhead": 6},
    "lut6-nofb": {"lut_ffn": 6, "lut_lmhead": 6, "error_feedback": False},  # what error feedback costs and gives
    "lut4": {"lut_ffn": 4, "lut_lmhead": 4},
    "default": dict(RECOMMENDED),
}


def source_model(arg: str | None = None) -> Path:
    if arg:
        return Path(arg).expanduser()
    from anechat.convert.default_model import ensure_default_model

    return ensure_default_model()


def coreml_variant(source: Path, variant: str, log=print) -> tuple[Path, float, bool]:
    """(folder, conversion seconds, converted now?) for ``variant`` of ``source``."""
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml
    out = variant_folder(source, variant)
    sidecar = out.parent / f".{out.name}.conversion.json"
    if (out / "meta.yaml").is_file() and sidecar.is_file():
        return out, float(json.loads(sidecar.read_text())["seconds"]), False
    log(f"converting {source.name} to Core ML ({variant}) -> {out} (cached for later runs)")
    start = time.perf_counter()
    convert_to_coreml(source, out, CoreMLConvertOptions(**VARIANTS[variant]))
    seconds = time.perf_counter() - start
    record_conversion(out, variant, seconds)
    return out, seconds, True


def variant_folder(source: Path, variant: str) -> Path:
    from anechat.paths import models_dir

    return models_dir() / f"{source.name}-coreml-{variant}"


def record_conversion(out: Path, variant: str, seconds: float) -> None:
    """Write the sidecar that lets :func:`coreml_variant` reuse ``out`` (e.g. one converted by
    bench/coreml_convert.py ``--keep-in-models``)."""
    (out.parent / f".{out.name}.conversion.json").write_text(json.dumps({"seconds": seconds, "options": VARIANTS[variant]}))
