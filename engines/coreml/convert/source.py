"""Reads a source model folder of a supported family (Hugging Face or MLX layout, float safetensors).

Only what the converter needs: the architecture numbers from ``config.json`` and the
weights as float32 numpy arrays keyed by their Hugging Face names. No transformers model
is instantiated.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np

from anechat.engines.errors import ModelFormatError, ModelNotFound
from anechat.engines.model_config_check import check_config_sizes
from anechat.engines.modeling.spec import SUPPORTED_ARCHITECTURES, ModelSpec, spec_from_config

__all__ = ["SUPPORTED_ARCHITECTURES", "load_weights", "read_spec", "with_vocab_from_weights"]

TOKENIZER_FILES_REQUIRED = ("tokenizer.json", "tokenizer_config.json")
TOKENIZER_FILES_OPTIONAL = (
    "generation_config.json",
    "config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "chat_template.json",
)


def _read_config(src: Path) -> dict:
    path = src / "config.json"
    if not path.is_file():
        raise ModelFormatError(f"{src} has no config.json", hint="point at a Hugging Face or MLX model folder")
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path} is not readable JSON: {exc}") from exc


def read_spec(src: Path) -> ModelSpec:
    """Check the folder is a float model of a supported family and return its description."""
    src = Path(src)
    if not src.is_dir():
        raise ModelNotFound(f"no model folder at {src}")
    cfg = _read_config(src)
    check_config_sizes(cfg, sorted(src.glob("*.safetensors")), src)
    spec = spec_from_config(cfg, src.name)
    if cfg.get("quantization") or cfg.get("quantization_config"):
        raise ModelFormatError(
            f"{src} holds quantized weights", hint="convert from the float (fp32/fp16/bf16) model instead"
        )
    for name in TOKENIZER_FILES_REQUIRED:
        if not (src / name).is_file():
            raise ModelFormatError(f"{src} has no {name}", hint="the converted model needs the source tokenizer")
    if not list(src.glob("*.safetensors")):
        raise ModelFormatError(f"{src} has no .safetensors weights")
    return spec


def with_vocab_from_weights(spec: ModelSpec, src: Path) -> ModelSpec:
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
