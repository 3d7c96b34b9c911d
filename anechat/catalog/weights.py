"""Safetensors headers: tensor names, dtypes and shapes, read without loading any weights.

A ``.safetensors`` file starts with a little-endian u64 ``N`` and ``N`` bytes of JSON
(``{name: {dtype, shape, data_offsets}, "__metadata__": {...}}``); the tensor data
follows. Reading only the header also tells whether the file is truncated: the last
tensor's end offset must fit in the file.
"""

from __future__ import annotations

import json
import math
import struct
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MAX_HEADER_BYTES = 100 * 1024 * 1024

DTYPE_NAMES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16", "F64": "float64", "F8_E4M3": "float8"}


class WeightsError(ValueError):
    """A weights file that cannot be used (message says why)."""


@dataclass
class SafetensorsHeader:
    path: Path
    tensors: dict[str, dict] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)


def read_safetensors_header(path: Path) -> SafetensorsHeader:
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                raise WeightsError(f"{path.name} is truncated (no header)")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES or 8 + n > size:
                raise WeightsError(f"{path.name} is truncated or corrupt (its header claims {n} bytes)")
            raw = fh.read(n)
    except OSError as exc:
        raise WeightsError(f"{path.name} cannot be read ({exc.strerror or exc})") from exc
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WeightsError(f"{path.name} has a corrupt header ({exc})") from exc
    if not isinstance(data, dict):
        raise WeightsError(f"{path.name} has a corrupt header (not a JSON object)")
    metadata = data.pop("__metadata__", None) or {}
    end = 0
    for name, info in data.items():
        if not isinstance(info, dict) or not isinstance(info.get("shape"), list):
            raise WeightsError(f"{path.name} has a corrupt header (tensor {name!r})")
        offsets = info.get("data_offsets") or [0, 0]
        end = max(end, int(offsets[1]))
    if 8 + n + end > size:
        raise WeightsError(
            f"{path.name} is truncated ({size} bytes on disk, its header needs {8 + n + end})"
        )
    return SafetensorsHeader(path, data, metadata if isinstance(metadata, dict) else {})


def weight_files(folder: Path) -> tuple[list[Path], list[str]]:
    """The safetensors files of a model folder and the names of missing shards.

    With ``model.safetensors.index.json`` the shards it names are the weights (any
    missing one is reported); otherwise every top-level ``*.safetensors`` file.
    """
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8")).get("weight_map") or {}
            shards = sorted(set(str(v) for v in weight_map.values()))
        except (OSError, ValueError, AttributeError) as exc:
            raise WeightsError(f"model.safetensors.index.json is not valid JSON ({exc})") from exc
        present = [folder / s for s in shards if (folder / s).is_file()]
        missing = [s for s in shards if not (folder / s).is_file()]
        return present, missing
    return sorted(p for p in folder.glob("*.safetensors") if p.is_file()), []


def _layer_bits(quant: dict, layer: str) -> int:
    override = quant.get(layer)
    if isinstance(override, dict) and "bits" in override:
        return int(override["bits"])
    return int(quant.get("bits", 4))


@dataclass
class WeightsSummary:
    parameters: int
    dtype: str  # dominant stored dtype of unquantized tensors, e.g. "bfloat16"
    mlx_format: bool  # saved by MLX (safetensors metadata format == "mlx")


def summarize_weights(headers: list[SafetensorsHeader], quantization: dict | None) -> WeightsSummary:
    """Logical parameter count (quantized MLX weights unpacked) and the dominant dtype.

    An MLX-quantized linear layer ``X`` stores ``X.weight`` packed into uint32 plus
    ``X.scales`` / ``X.biases``; its logical width is ``packed * 32 / bits``.
    """
    names = {name for h in headers for name in h.tensors}
    total = 0
    dtypes: Counter = Counter()
    for h in headers:
        for name, info in h.tensors.items():
            shape = [int(d) for d in info["shape"]]
            numel = math.prod(shape) if shape else 1
            layer = name.rsplit(".", 1)[0]
            if quantization and (name.endswith(".scales") or name.endswith(".biases")) and f"{layer}.weight" in names:
                continue
            if quantization and info.get("dtype") == "U32" and f"{layer}.scales" in names and shape:
                numel = numel * 32 // _layer_bits(quantization, layer)
            else:
                dtypes[info.get("dtype", "")] += numel
            total += numel
    dominant = dtypes.most_common(1)[0][0] if dtypes else ""
    mlx = any(str(h.metadata.get("format", "")).lower() == "mlx" for h in headers)
    return WeightsSummary(total, DTYPE_NAMES.get(dominant, dominant.lower()), mlx)


def estimate_llama_parameters(config: dict) -> int | None:
    """Parameter count of a llama-family model from its config (Core ML folders carry no safetensors)."""
    try:
        h = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        inter = int(config["intermediate_size"])
        vocab = int(config["vocab_size"])
        heads = int(config["num_attention_heads"])
        kv = int(config.get("num_key_value_heads") or heads)
        hd = int(config.get("head_dim") or h // heads)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None
    per_layer = h * heads * hd + 2 * h * kv * hd + heads * hd * h + 3 * h * inter + 2 * h
    head = 0 if config.get("tie_word_embeddings", False) else vocab * h
    return vocab * h + layers * per_layer + h + head
