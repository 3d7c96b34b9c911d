"""Reads a llama-family source model folder (Hugging Face or MLX layout, float safetensors).

Only what the converter needs: the architecture numbers from ``config.json`` and the
weights as float32 numpy arrays keyed by their Hugging Face names. No transformers model
is instantiated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from anechat.engines.errors import ModelFormatError, ModelNotFound
from anechat.engines.model_config_check import check_config_sizes

#: ``config.json`` architectures this converter knows how to rebuild for the ANE.
SUPPORTED_ARCHITECTURES = ("LlamaForCausalLM",)
#: rope_scaling types implemented (``None`` / "default" is plain rope).
SUPPORTED_ROPE_TYPES = ("default", "linear", "llama3")

TOKENIZER_FILES_REQUIRED = ("tokenizer.json", "tokenizer_config.json")
TOKENIZER_FILES_OPTIONAL = (
    "generation_config.json",
    "config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
)


@dataclass(frozen=True)
class LlamaSpec:
    """The numbers that shape a llama model."""

    name: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int  # rows of the embedding / LM head matrices
    rms_norm_eps: float
    rope_theta: float
    rope_scaling: dict | None
    tie_word_embeddings: bool
    license: str | None = None

    @property
    def rope_type(self) -> str:
        if not self.rope_scaling:
            return "default"
        return str(self.rope_scaling.get("rope_type") or self.rope_scaling.get("type") or "default")


def _read_config(src: Path) -> dict:
    path = src / "config.json"
    if not path.is_file():
        raise ModelFormatError(f"{src} has no config.json", hint="point at a Hugging Face or MLX model folder")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path} is not readable JSON: {exc}") from exc


def read_spec(src: Path) -> LlamaSpec:
    """Check the folder is a float llama-family model and return its shape numbers."""
    src = Path(src)
    if not src.is_dir():
        raise ModelNotFound(f"no model folder at {src}")
    cfg = _read_config(src)
    check_config_sizes(cfg, sorted(src.glob("*.safetensors")), src)
    archs = cfg.get("architectures") or []
    if not any(a in SUPPORTED_ARCHITECTURES for a in archs):
        found = ", ".join(archs) or f"model_type {cfg.get('model_type')!r}"
        raise ModelFormatError(
            f"cannot convert {found} to Core ML",
            hint="supported architectures: " + ", ".join(SUPPORTED_ARCHITECTURES) + " (Llama 2/3.x, SmolLM2, TinyLlama)",
        )
    if cfg.get("quantization") or cfg.get("quantization_config"):
        raise ModelFormatError(
            f"{src} holds quantized weights", hint="convert from the float (fp32/fp16/bf16) model instead"
        )
    for key in ("attention_bias", "mlp_bias"):
        if cfg.get(key):
            raise ModelFormatError(f"{key}=true is not supported by the Core ML converter")
    if cfg.get("hidden_act", "silu") != "silu":
        raise ModelFormatError(f"hidden_act {cfg.get('hidden_act')!r} is not supported (only silu)")
    for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads"):
        if not isinstance(cfg.get(key), int):
            raise ModelFormatError(f"config.json lacks {key}")
    heads = cfg["num_attention_heads"]
    kv_heads = cfg.get("num_key_value_heads") or heads
    if heads % kv_heads:
        raise ModelFormatError(f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv_heads}")
    rope = cfg.get("rope_parameters") or {}  # transformers 5 keeps rope_theta and the scaling here
    spec = LlamaSpec(
        name=src.name,
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_layers=cfg["num_hidden_layers"],
        num_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=cfg.get("head_dim") or cfg["hidden_size"] // heads,
        vocab_size=int(cfg.get("vocab_size") or 0),
        rms_norm_eps=float(cfg.get("rms_norm_eps", 1e-6)),
        rope_theta=float(cfg.get("rope_theta") or rope.get("rope_theta") or 10000.0),
        rope_scaling=cfg.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None),
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        license=cfg.get("license"),
    )
    if spec.rope_type not in SUPPORTED_ROPE_TYPES:
        raise ModelFormatError(
            f"rope_scaling type {spec.rope_type!r} is not supported",
            hint="supported: " + ", ".join(SUPPORTED_ROPE_TYPES),
        )
    for name in TOKENIZER_FILES_REQUIRED:
        if not (src / name).is_file():
            raise ModelFormatError(f"{src} has no {name}", hint="the converted model needs the source tokenizer")
    if not list(src.glob("*.safetensors")):
        raise ModelFormatError(f"{src} has no .safetensors weights")
    return spec


def with_vocab_from_weights(spec: LlamaSpec, src: Path) -> LlamaSpec:
    """The spec with ``vocab_size`` set to the embedding matrix's rows (read from the file header)."""
    from safetensors import safe_open

    for file in sorted(Path(src).glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as fh:
                if "model.embed_tokens.weight" in fh.keys():
                    rows, cols = fh.get_slice("model.embed_tokens.weight").get_shape()
                    if cols != spec.hidden_size:
                        raise ModelFormatError(
                            f"model.embed_tokens.weight has {cols} columns, config.json says hidden_size {spec.hidden_size}"
                        )
                    return replace(spec, vocab_size=int(rows))
        except ModelFormatError:
            raise
        except Exception as exc:
            raise ModelFormatError(f"cannot read {file.name}: {exc}") from exc
    raise ModelFormatError(f"{src} has no model.embed_tokens.weight")


def load_weights(src: Path) -> dict[str, np.ndarray]:
    """All tensors of the folder's safetensors files as float32 numpy arrays (bf16 included)."""
    import torch
    from safetensors import safe_open

    weights: dict[str, np.ndarray] = {}
    for file in sorted(Path(src).glob("*.safetensors")):
        try:
            with safe_open(str(file), framework="pt") as fh:
                for key in fh.keys():
                    weights[key] = fh.get_tensor(key).to(torch.float32).numpy()
        except Exception as exc:  # safetensors raises its own error types
            raise ModelFormatError(f"cannot read {file.name}: {exc}") from exc
    return weights


def require(weights: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The named tensor, checked against the shape the config promises."""
    if name not in weights:
        raise ModelFormatError(f"the weights lack {name}")
    value = weights[name]
    if tuple(value.shape) != tuple(shape):
        raise ModelFormatError(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def lm_head_weight(spec: LlamaSpec, weights: dict[str, np.ndarray]) -> np.ndarray:
    """The LM head matrix (the embedding matrix when the model ties them)."""
    if "lm_head.weight" in weights:
        return weights["lm_head.weight"]
    if spec.tie_word_embeddings:
        return weights["model.embed_tokens.weight"]
    raise ModelFormatError("the weights lack lm_head.weight (and the model does not tie it to the embeddings)")
