"""The Core AI model folder: ``model.aimodel`` (the asset), ``compiled.aimodelx`` (the compiled
cache), the tokenizer files and ``coreai.json``, the manifest read here.

A model folder is untrusted input: every field is checked before it shapes an array.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from anechat.engines.errors import ModelFormatError

MANIFEST = "coreai.json"
ASSET = "model.aimodel"
COMPILED = "compiled.aimodelx"
FORMAT_VERSION = 1
ENTRYPOINTS = ("prefill", "infer")
#: largest context / batch / layer count a manifest may claim (sizes arrays before any weight is read)
_LIMITS = {"context_length": 1 << 20, "batch_size": 1 << 16, "num_layers": 4096, "num_kv_heads": 4096, "head_dim": 4096}


@dataclass(frozen=True)
class CoreAIManifest:
    name: str
    architecture: str
    context_length: int
    batch_size: int
    dtype: str
    compression: str
    num_layers: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    entrypoints: tuple[str, ...] = ENTRYPOINTS
    state_names: tuple[str, ...] = ()
    converter: str = ""
    format_version: int = FORMAT_VERSION
    extra: dict = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        data = asdict(self)
        data["entrypoints"], data["state_names"] = list(self.entrypoints), list(self.state_names)
        (Path(folder) / MANIFEST).write_text(json.dumps(data, indent=2) + "\n")

    @property
    def state_shape(self) -> tuple[int, int, int, int]:
        return (1, self.num_kv_heads, self.context_length, self.head_dim)

    @property
    def state_dtype(self) -> str:
        """The KV cache's dtype as the converter wrote it (fp32 beside bf16 weights); else the weights'."""
        value = self.extra.get("state_dtype")
        return value if value in ("fp32", "fp16", "bf16") else self.dtype

    @property
    def quantization(self) -> str:
        """What the catalog and the UI show: the weights' dtype, and the compression if any."""
        return self.dtype if self.compression == "none" else f"{self.compression.upper()} ({self.dtype})"


def is_coreai_folder(folder: Path) -> bool:
    folder = Path(folder)
    return (folder / MANIFEST).is_file() and (folder / ASSET).is_dir()


def read_manifest(folder: Path) -> CoreAIManifest:
    """The folder's manifest, checked; ModelFormatError names the first bad field."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file() or not (folder / ASSET).is_dir():
        raise ModelFormatError(
            f"{folder} is not a Core AI model folder (no {MANIFEST} + {ASSET})",
            hint="convert one with: anechat convert MODEL --to coreai",
        )
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path} is not readable JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ModelFormatError(f"{path} must hold a JSON object")
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"{path}: format_version {data.get('format_version')!r} is not {FORMAT_VERSION}", hint="convert the model again")
    for key in ("context_length", "batch_size", "num_layers", "num_kv_heads", "head_dim", "vocab_size"):
        value = data.get(key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1 or value > _LIMITS.get(key, 1 << 24):
            raise ModelFormatError(f"{path}: {key}={value!r} is invalid")
    for key in ("name", "architecture", "dtype", "compression", "converter"):
        if not isinstance(data.get(key, ""), str):
            raise ModelFormatError(f"{path}: {key} must be a string")
    entrypoints = tuple(data.get("entrypoints") or ())
    if set(ENTRYPOINTS) - set(entrypoints):
        raise ModelFormatError(f"{path}: the asset must have the entrypoints {', '.join(ENTRYPOINTS)}")
    states = tuple(str(s) for s in data.get("state_names") or ())
    if len(states) != 2 * data["num_layers"]:
        raise ModelFormatError(f"{path}: {len(states)} state names for {data['num_layers']} layers (expected two per layer)")
    return CoreAIManifest(
        name=str(data.get("name") or folder.name),
        architecture=str(data.get("architecture") or "llama"),
        context_length=data["context_length"],
        batch_size=min(data["batch_size"], data["context_length"]),
        dtype=str(data.get("dtype") or "fp32"),
        compression=str(data.get("compression") or "none"),
        num_layers=data["num_layers"],
        num_kv_heads=data["num_kv_heads"],
        head_dim=data["head_dim"],
        vocab_size=data["vocab_size"],
        entrypoints=entrypoints,
        state_names=states,
        converter=str(data.get("converter") or ""),
        extra=data.get("extra") if isinstance(data.get("extra"), dict) else {},
    )
