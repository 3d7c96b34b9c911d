"""config.json is untrusted: its sizes are checked against the weights before a model is built.

A config that claims 10,000,000 layers or a vocabulary of 10^10 would make a model
builder allocate (or loop) for a very long time. :func:`check_config_sizes` reads
only the safetensors headers (no tensor data) and refuses, in one line, a config
whose sizes are not positive integers of a sane size or that the weights do not
back: more layers than the weights hold, a vocabulary larger than the embedding
table, a hidden size the embedding does not have.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Iterable

from anechat.engines.errors import ModelFormatError

#: the largest value each size may take at all (well above any released model)
LIMITS = {
    "num_hidden_layers": 1_024,
    "hidden_size": 1 << 17,
    "intermediate_size": 1 << 20,
    "num_attention_heads": 4_096,
    "num_key_value_heads": 4_096,
    "head_dim": 4_096,
    "vocab_size": 1 << 22,
    "max_position_embeddings": 1 << 24,
}
_MAX_HEADER = 100 << 20
_LAYER = re.compile(r"(?:^|\.)(?:layers|h|blocks)\.(\d+)\.")
_EMBEDDING = ("embed_tokens.weight", "wte.weight", "tok_embeddings.weight", "word_embeddings.weight")
_FLOAT = {"F16", "BF16", "F32", "F64"}


def check_config_sizes(config: dict, weight_files: Iterable[Path], where: Path | str) -> None:
    """Raise ModelFormatError when ``config``'s sizes are absurd or not backed by the weights."""
    sizes = _sizes(config.get("text_config") if isinstance(config.get("text_config"), dict) else config, where)
    shapes = read_tensor_shapes(weight_files)
    layers = {int(m.group(1)) for name in shapes for m in [_LAYER.search(name)] if m}
    claimed = sizes.get("num_hidden_layers")
    if claimed is not None and layers and claimed > len(layers):
        raise _refuse(where, f"num_hidden_layers is {claimed} but the weights hold {len(layers)} layers")
    embedding = next((shape for name, (dtype, shape) in shapes.items() if name.endswith(_EMBEDDING)), None)
    if embedding is None or len(embedding) != 2:
        return
    rows = embedding[0]
    vocab = sizes.get("vocab_size")
    if vocab is not None and vocab > rows:
        raise _refuse(where, f"vocab_size is {vocab} but the embedding table has {rows} rows")
    dtype = next(d for name, (d, shape) in shapes.items() if name.endswith(_EMBEDDING))
    hidden = sizes.get("hidden_size")
    if hidden is not None and dtype in _FLOAT and hidden != embedding[1]:
        raise _refuse(where, f"hidden_size is {hidden} but the embedding table has {embedding[1]} columns")


def read_tensor_shapes(weight_files: Iterable[Path]) -> dict[str, tuple[str, list[int]]]:
    """Tensor name -> (dtype, shape), from the safetensors headers only."""
    shapes: dict[str, tuple[str, list[int]]] = {}
    for file in weight_files:
        try:
            with open(file, "rb") as fh:
                (length,) = struct.unpack("<Q", fh.read(8))
                if length > _MAX_HEADER:
                    raise ValueError(f"a header of {length} bytes")
                header = json.loads(fh.read(length))
            for name, info in header.items():
                if name != "__metadata__":
                    shapes[name] = (str(info["dtype"]), [int(n) for n in info["shape"]])
        except (OSError, ValueError, KeyError, TypeError, AttributeError, struct.error) as exc:
            raise ModelFormatError(f"{file} is not a readable safetensors file ({exc})",
                                   hint="re-download or re-convert the model") from exc
    return shapes


def _sizes(config: dict, where: Path | str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for key, most in LIMITS.items():
        value = config.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= most:
            raise _refuse(where, f"{key} is {str(value)[:40]} (a whole number from 1 to {most} is expected)")
        sizes[key] = value
    return sizes


def _refuse(where: Path | str, problem: str) -> ModelFormatError:
    return ModelFormatError(f"the weights in {where} do not match its config.json: {problem}",
                            hint="re-download the model, or fix config.json")
