"""Recognises a Core ML model folder in the ANEMLL layout (meta.yaml + parts).

The facts come from the engine's one ANEMLL layout module (:mod:`anechat.engines.coreml.anemll`):
``meta.yaml`` parsed and typed, every part found as ``.mlmodelc`` or ``.mlpackage`` — the
same answer the engine gives when it loads the folder. This module only turns them into a
:class:`Detection` (a refusal becomes its ``reason``, a warning one of its ``notes``).
"""

from __future__ import annotations

import json
from pathlib import Path

from anechat.catalog.detection import Detection, unsupported
from anechat.catalog.weights import estimate_llama_parameters
from anechat.engines.coreml.anemll import LayoutError, locate_parts, read_meta


def quantization_label(luts: dict[str, int | None], down: int | None = None, last: int | None = None) -> str:
    """``LUT6``, ``float16``, or the FFN's LUT with what differs: ``LUT4 (down/k/v LUT6, last layer
    LUT8, lmhead LUT6)`` (``down``, ``last``: a mixed recipe's down projections and last layer)."""
    ffn = luts.get("ffn")
    label = f"LUT{ffn}" if ffn else "float16"
    others = [f"{name} LUT{bits}" for name, bits in (("down/k/v", down), ("last layer", last)) if ffn and bits and bits != ffn]
    others += [f"{'lmhead' if k == 'lm_head' else k} {'LUT' + str(v) if v else 'fp16'}" for k, v in luts.items() if k != "ffn" and v != ffn]
    if others:
        label += " (" + ", ".join(others) + ")"
    return label


def detect_coreml(folder: Path) -> Detection:
    try:
        meta = read_meta(folder)
    except LayoutError as exc:
        return unsupported(exc.relative_to(folder))
    arch = meta.architecture or meta.model_prefix
    try:
        layout = locate_parts(folder, meta)
    except LayoutError as exc:
        return unsupported(exc.relative_to(folder), architecture=arch, context_length=meta.context_length)
    parameters = None
    config_path = folder / "config.json"
    if config_path.is_file():
        try:
            parameters = estimate_llama_parameters(json.loads(config_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            parameters = None
    det = Detection(
        format="coreml",
        engines=("coreml",),
        quantization=quantization_label(layout.luts, meta.lut_ffn_down, meta.lut_ffn_last),
        parameters=parameters,
        context_length=meta.context_length,
        architecture=arch,
        notes=layout.warnings,
        details={
            "luts": dict(layout.luts),
            "num_chunks": len(layout.chunks),
            "monolithic": layout.monolithic,
            "batch_size": meta.batch_size,
            "state_length": meta.state_length,
            "converter": meta.converter or None,
            "version": meta.version or None,
        },
    )
    if not (folder / "tokenizer.json").is_file():
        det.engines = ()
        det.reason = "no tokenizer.json beside meta.yaml (copy the source model's tokenizer files here)"
    return det
