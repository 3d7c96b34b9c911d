"""Core AI conversions of the default model for the bench scripts, cached under the models dir.

``<models>/smollm2-135m-instruct-coreai-<variant>`` with a hidden sidecar
``.<folder>.conversion.json`` recording how long the conversion took (compiled cache included).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from coreml_models import folder_bytes, source_model

__all__ = ["VARIANTS", "coreai_variant", "folder_bytes", "source_model"]

#: context 512 holds the benches' longest run (128 prompt + 64 generated tokens)
VARIANTS = {
    "fp32": {},
    "bf16": {"dtype": "bf16"},
    "lut8": {"compress": "lut8"},
    "lut6": {"compress": "lut6"},
    "int8": {"compress": "int8"},
}


def coreai_variant(source: Path, variant: str, log=print) -> tuple[Path, float, bool]:
    """(folder, conversion seconds, converted now?) for ``variant`` of ``source``."""
    from anechat.engines.coreai.convert import CoreAIConvertOptions, convert_to_coreai
    from anechat.engines.coreai.manifest import is_coreai_folder
    from anechat.paths import models_dir

    out = models_dir() / f"{source.name}-coreai-{variant}"
    sidecar = out.parent / f".{out.name}.conversion.json"
    if is_coreai_folder(out) and sidecar.is_file():
        return out, float(json.loads(sidecar.read_text())["seconds"]), False
    log(f"converting {source.name} to Core AI ({variant}) -> {out} (cached for later runs)")
    start = time.perf_counter()

    def progress(message: str, _fraction) -> None:  # each step with its start time: the profile of a conversion
        log(f"  {time.perf_counter() - start:6.1f} s  {message}")

    convert_to_coreai(source, out, CoreAIConvertOptions(**VARIANTS[variant]), progress)
    seconds = time.perf_counter() - start
    sidecar.write_text(json.dumps({"seconds": seconds, "options": VARIANTS[variant]}))
    return out, seconds, True
