"""Recognises a Core ML model folder in the ANEMLL layout (meta.yaml + parts).

Checks what the catalog can check cheaply: ``meta.yaml`` parses, its
``model_info.parameters`` has the right types, and every part it names exists as
``.mlmodelc`` or ``.mlpackage`` (ANEMLL names ``.mlmodelc`` even where only the
``.mlpackage`` was written; the FFN name carries no chunk suffix).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from anechat.catalog.detection import Detection, unsupported
from anechat.catalog.weights import estimate_llama_parameters

PART_SUFFIXES = (".mlmodelc", ".mlpackage")
_CHUNK = re.compile(r"_chunk_\d+of\d+$")


def _lut(value: object) -> int | None:
    """``lut_ffn: 6`` -> 6; ``none`` / null / false -> None; anything else -> ValueError."""
    if value is None or value is False or (isinstance(value, str) and value.strip().lower() in ("none", "", "false")):
        return None
    if isinstance(value, bool):
        raise ValueError(value)
    return int(value)


def _part_exists(folder: Path, name: str) -> bool:
    stem = name
    for suffix in PART_SUFFIXES:
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    return any((folder / f"{stem}{s}").exists() for s in PART_SUFFIXES)


def _strip_suffix(name: str) -> str:
    for suffix in PART_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _expected_parts(params: dict, luts: dict[str, int | None], chunks: int) -> list[str]:
    prefix = str(params.get("model_prefix") or "llama")

    def named(key: str, default_stem: str, lut: int | None) -> str:
        value = params.get(key)
        if isinstance(value, str) and value.strip():
            return _strip_suffix(value.strip())
        return f"{prefix}_{default_stem}" + (f"_lut{lut}" if lut else "")

    parts = [named("embeddings", "embeddings", luts["lut_embeddings"]), named("lm_head", "lm_head", luts["lut_lmhead"])]
    ffn = _CHUNK.sub("", named("ffn", "FFN_PF", luts["lut_ffn"]))
    parts += [f"{ffn}_chunk_{i:02d}of{chunks:02d}" for i in range(1, chunks + 1)]
    return parts


def detect_coreml(folder: Path) -> Detection:
    import yaml

    try:
        meta = yaml.safe_load((folder / "meta.yaml").read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        return unsupported(f"meta.yaml is not valid YAML{where}")
    except (OSError, UnicodeDecodeError) as exc:
        return unsupported(f"meta.yaml cannot be read ({exc})")
    info = meta.get("model_info") if isinstance(meta, dict) else None
    params = info.get("parameters") if isinstance(info, dict) else None
    if not isinstance(params, dict):
        return unsupported("meta.yaml without model_info.parameters (not an ANEMLL-layout Core ML model)")
    arch = str(info.get("architecture") or params.get("model_prefix") or "")
    problems = []
    ints: dict[str, int] = {}
    for key, required in (("context_length", True), ("batch_size", False), ("num_chunks", False), ("state_length", False)):
        value = params.get(key)
        if value is None:
            if required:
                problems.append(f"{key} is missing")
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"{key} must be a positive integer, not {value!r}")
        else:
            ints[key] = value
    luts: dict[str, int | None] = {}
    for key in ("lut_embeddings", "lut_ffn", "lut_lmhead"):
        try:
            luts[key] = _lut(params.get(key))
        except (TypeError, ValueError):
            problems.append(f"{key} must be a bit count or none, not {params.get(key)!r}")
            luts[key] = None
    if problems:
        return unsupported("meta.yaml: " + "; ".join(problems), architecture=arch)
    chunks = ints.get("num_chunks", 1)
    missing = [p for p in _expected_parts(params, luts, chunks) if not _part_exists(folder, p)]
    context = ints["context_length"]
    if missing:
        return unsupported(
            f"missing Core ML part {missing[0]} (.mlmodelc or .mlpackage)"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""),
            architecture=arch,
            context_length=context,
        )
    ffn_lut = luts["lut_ffn"]
    label = f"LUT{ffn_lut}" if ffn_lut else "float16"
    others = {k.split("_", 1)[1]: v for k, v in luts.items() if k != "lut_ffn" and v != ffn_lut}
    if others:
        label += " (" + ", ".join(f"{k} {'LUT' + str(v) if v else 'fp16'}" for k, v in others.items()) + ")"
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
        quantization=label,
        parameters=parameters,
        context_length=context,
        architecture=arch,
        details={
            "luts": luts,
            "num_chunks": chunks,
            "batch_size": ints.get("batch_size"),
            "state_length": ints.get("state_length"),
            "converter": info.get("converter") if isinstance(info, dict) else None,
            "version": info.get("version") if isinstance(info, dict) else None,
        },
    )
    if not (folder / "tokenizer.json").is_file():
        det.engines = ()
        det.reason = "no tokenizer.json beside meta.yaml (copy the source model's tokenizer files here)"
    return det
