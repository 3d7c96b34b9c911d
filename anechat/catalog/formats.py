"""Format detection: what a file or folder holds, what can run it, and why not.

``detect(path)`` never raises for a bad model: broken JSON, missing or truncated
weights, unreadable folders all give ``format="unsupported"`` with a ``reason``.

- MLX: safetensors + config.json, quantized (``quantization`` key) or saved by MLX
- hf: a Hugging Face transformers checkpoint (safetensors + config.json); runs on MLX as is
- coreml: the ANEMLL layout (meta.yaml + embeddings / FFN chunks / LM head parts)
- gguf: a GGUF file; convertible when its architecture is one the importer knows
- coreai: a Core AI model folder (``coreai.json`` + ``model.aimodel``, made by ``anechat convert --to coreai``)
"""

from __future__ import annotations

import json
from pathlib import Path

from anechat.catalog.coreml_meta import detect_coreml
from anechat.catalog.detection import Detection, mlx_lm_supports, unsupported
from anechat.catalog.gguf_header import GGUFHeaderError, import_problem, read_gguf_header
from anechat.catalog.weights import WeightsError, read_safetensors_header, summarize_weights, weight_files

CONTEXT_KEYS = ("max_position_embeddings", "max_seq_len", "seq_length", "n_positions", "max_sequence_length", "n_ctx")
PYTORCH_WEIGHTS = ("*.bin", "*.pth", "*.pt", "*.ckpt")
#: config.json architectures the Core ML converter rebuilds (engines/coreml/convert/source.py)
COREML_CONVERTIBLE = ("LlamaForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM", "Gemma3ForCausalLM")

__all__ = ["Detection", "detect", "gguf_files", "context_length_of"]


def gguf_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.glob("*.gguf") if p.is_file())
    except OSError:
        return []


def detect(path: Path) -> Detection:
    """What ``path`` (a model folder or a ``.gguf`` file) holds."""
    try:
        if path.is_file():
            if path.suffix.lower() == ".gguf":
                return detect_gguf(path)
            return unsupported(f"{path.name} is a single file; point at the model's folder (or a .gguf file)")
        if not path.is_dir():
            return unsupported(f"{path} does not exist")
        names = {p.name for p in path.iterdir()}
    except PermissionError:
        return unsupported(f"cannot read {path} (permission denied)")
    except OSError as exc:
        return unsupported(f"cannot read {path} ({exc.strerror or exc})")
    if "meta.yaml" in names:
        return detect_coreml(path)
    if "coreai.json" in names or any(n.endswith(".aimodel") for n in names):
        return detect_coreai(path)
    if "config.json" in names or any(n.endswith(".safetensors") for n in names):
        return detect_transformers(path)
    ggufs = [n for n in names if n.lower().endswith(".gguf")]
    if ggufs:
        return unsupported(f"holds GGUF files ({', '.join(sorted(ggufs))}); name the file itself")
    if not names:
        return unsupported("empty folder")
    return unsupported("not a model: no config.json, meta.yaml or .gguf file here")


def context_length_of(config: dict) -> int | None:
    for cfg in (config, config.get("text_config") if isinstance(config.get("text_config"), dict) else {}):
        for key in CONTEXT_KEYS:
            value = cfg.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
    return None


def _read_config(folder: Path) -> tuple[dict | None, str]:
    path = folder / "config.json"
    if not path.is_file():
        return None, "no config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, f"config.json cannot be read ({exc})"
    except ValueError as exc:
        return None, f"config.json is not valid JSON ({exc})"
    if not isinstance(config, dict):
        return None, "config.json is not a JSON object"
    return config, ""


def _mlx_quant_label(quant: dict) -> str:
    bits = quant.get("bits")
    group = quant.get("group_size")
    mode = str(quant.get("mode") or "affine")
    layer_bits = {int(v["bits"]) for v in quant.values() if isinstance(v, dict) and "bits" in v}
    all_bits = sorted(layer_bits | ({int(bits)} if bits is not None else set()))
    if mode != "affine":
        label = mode
    elif len(all_bits) > 1:
        label = "mixed " + "/".join(str(b) for b in all_bits) + "-bit"
    else:
        label = f"{all_bits[0]}-bit" if all_bits else "quantized"
    return f"{label} g{group}" if group else label


def detect_transformers(folder: Path) -> Detection:
    config, problem = _read_config(folder)
    if config is None:
        if problem == "no config.json":
            problem = "no config.json (safetensors weights need the model's config.json beside them)"
        return unsupported(problem)
    arch = str(config.get("model_type") or (config.get("architectures") or [""])[0] or "")
    context = context_length_of(config)
    base = dict(architecture=arch, context_length=context)
    try:
        files, missing = weight_files(folder)
    except WeightsError as exc:
        return unsupported(str(exc), **base)
    if missing:
        more = f" and {len(missing) - 2} more" if len(missing) > 2 else ""
        return unsupported(
            f"incomplete: missing weight shard {', '.join(missing[:2])}{more} (interrupted download? pull it again)", **base
        )
    if not files:
        torch_files = [p.name for pattern in PYTORCH_WEIGHTS for p in folder.glob(pattern)]
        if torch_files:
            return unsupported(
                f"no *.safetensors weights, only PyTorch files ({', '.join(sorted(torch_files)[:3])}); "
                "MLX reads safetensors: pull a safetensors copy of this model", **base
            )
        return unsupported("no *.safetensors weights", **base)
    quant = config.get("quantization") if isinstance(config.get("quantization"), dict) else None
    hf_quant = config.get("quantization_config")
    if quant is None and isinstance(hf_quant, dict) and hf_quant.get("quant_method"):
        return unsupported(
            f"quantized with {hf_quant.get('quant_method')} (a transformers quantization MLX cannot load); "
            "pick an MLX-quantized or float copy of this model", **base
        )
    try:
        headers = [read_safetensors_header(p) for p in files]
    except WeightsError as exc:
        return unsupported(f"{exc} (interrupted download? pull it again)", **base)
    summary = summarize_weights(headers, quant)
    fmt = "mlx" if (quant is not None or summary.mlx_format) else "hf"
    label = _mlx_quant_label(quant) if quant is not None else (summary.dtype or str(config.get("torch_dtype") or ""))
    archs = config.get("architectures") or []
    convert_to = []
    if quant is None:
        convert_to.append("mlx")
        if any(a in COREML_CONVERTIBLE for a in archs):
            convert_to.extend(("coreml", "coreai"))
    det = Detection(
        format=fmt,
        engines=("mlx",),
        quantization=label,
        parameters=summary.parameters,
        convertible=bool(convert_to),
        details={"weights": [p.name for p in files], "convert_to": convert_to},
        **base,
    )
    if not (folder / "tokenizer.json").is_file():
        det.engines = ()
        det.reason = "no tokenizer.json (anechat reads the fast tokenizer file; save it with transformers' AutoTokenizer)"
    elif config.get("model_type") and not mlx_lm_supports(str(config["model_type"])):
        det.engines = ()
        det.reason = f"mlx-lm has no '{config['model_type']}' architecture (update mlx-lm, or pick another model)"
    elif fmt == "hf":
        det.notes = ("a Hugging Face checkpoint: MLX runs it as is; anechat convert makes a smaller quantized copy",)
    return det


def detect_gguf(path: Path) -> Detection:
    try:
        header = read_gguf_header(path)
    except (GGUFHeaderError, OSError, ValueError) as exc:
        return unsupported(f"{path.name} is not a readable GGUF file ({exc})")
    context = header.arch_value("context_length")
    det = Detection(
        format="gguf",
        engines=(),
        quantization=header.file_type,
        parameters=header.parameters or None,
        context_length=int(context) if isinstance(context, int) else None,
        architecture=header.architecture,
        details={"gguf_name": header.metadata.get("general.name"), "gguf_version": header.version},
    )
    problem = import_problem(header)
    if problem is not None:
        det.format = "unsupported"
        det.reason = "{} — {}".format(*problem)
    else:
        det.convertible = True
        det.details["convert_to"] = ["mlx"]
        det.reason = f"GGUF runs on no engine as is; convert it: anechat convert {path} --to mlx"
    return det


def detect_coreai(folder: Path) -> Detection:
    """A Core AI model folder: the manifest says context, dtype and compression; size is the asset's."""
    from anechat.engines.coreai.manifest import ASSET, read_manifest
    from anechat.engines.errors import ModelFormatError

    try:
        manifest = read_manifest(folder)
    except ModelFormatError as exc:
        return unsupported(str(exc))
    if not (folder / "tokenizer.json").is_file():
        return unsupported("a Core AI model folder without tokenizer.json (convert the model again)", architecture=manifest.architecture)
    try:
        size = sum(p.stat().st_size for p in (folder / ASSET).rglob("*") if p.is_file())
    except OSError:
        size = 0
    return Detection(
        format="coreai",
        engines=("coreai",),
        quantization=manifest.quantization,
        context_length=manifest.context_length,
        architecture=manifest.architecture,
        details={
            "asset_bytes": size,
            "dtype": manifest.dtype,
            "compression": manifest.compression,
            "batch_size": manifest.batch_size,
            "entrypoints": list(manifest.entrypoints),
        },
    )
