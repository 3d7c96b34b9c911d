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
    "lut4": {"lut_ffn": 4, "lut_lmhead": 6},  # ANEMLL's own LUT4 recipe (FFN 4, LM head 6); ours keeps down projections at 6, the last layer at 8
    "lut4-uniform": {"lut_ffn": 4, "lut_lmhead": 4, "lut_ffn_down": 4, "lut_ffn_last": 4},
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
        record = json.loads(sidecar.read_text())
        if record.get("options") == VARIANTS[variant] and record.get("converter") == converter_hash():
            return out, float(record["seconds"]), False
        log(f"{out.name} was made by other options or another converter: converting again")
        import shutil

        shutil.rmtree(out)
    log(f"converting {source.name} to Core ML ({variant}) -> {out} (cached for later runs)")
    converter = converter_hash()  # of the code that converts, before it runs
    start = time.perf_counter()
    convert_to_coreml(source, out, CoreMLConvertOptions(**VARIANTS[variant]))
    seconds = time.perf_counter() - start
    record_conversion(out, variant, seconds, converter)
    return out, seconds, True


def variant_folder(source: Path, variant: str) -> Path:
    from anechat.paths import models_dir

    return models_dir() / f"{source.name}-coreml-{variant}"


def record_conversion(out: Path, variant: str, seconds: float, converter: str | None = None) -> None:
    """Write the sidecar that lets :func:`coreml_variant` reuse ``out`` (e.g. one converted by
    bench/coreml_convert.py ``--keep-in-models``)."""
    record = {"seconds": seconds, "options": VARIANTS[variant], "converter": converter or converter_hash()}
    (out.parent / f".{out.name}.conversion.json").write_text(json.dumps(record))


def converter_hash() -> str:
    """A hash of the Core ML converter's source: a cached conversion is reused only by the same code."""
    import hashlib

    import anechat.engines.coreml.convert as convert

    digest = hashlib.sha256()
    for path in sorted(Path(convert.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]
