"""The GGUF architectures anechat imports, each described once: how its tensors are named,
what llama.cpp's converter did to them, and how its config.json is built.

The list of names is :data:`anechat.catalog.gguf_header.SUPPORTED_ARCHITECTURES` (the
catalog's fast check); a test keeps it equal to :data:`ARCHITECTURES`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from anechat.engines.errors import ModelFormatError

from anechat.convert.gguf import gemma3
from anechat.convert.gguf.config import llama_config
from anechat.convert.gguf.reader import GGUFFile

LLAMA_LAYER_NAMES = {
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


@dataclass(frozen=True)
class Architecture:
    name: str  # general.architecture
    layer_names: dict[str, str]  # llama.cpp's blk.N.<part> -> Hugging Face's model.layers.N.<part>
    unpermute_qk: bool  # llama.cpp reordered q/k rows for its interleaved rope
    norm_shift: float  # added to every *norm.weight by llama.cpp's converter
    config: Callable[[GGUFFile, "np.ndarray | None"], dict]
    chat_template: str | None = None  # the family's template, for files written without one
    template_tokens: tuple[str, ...] = ()  # ... used only when the vocabulary has these


ARCHITECTURES = {
    "llama": Architecture("llama", LLAMA_LAYER_NAMES, True, 0.0, llama_config),
    "gemma3": Architecture(
        "gemma3",
        gemma3.LAYER_NAMES,
        False,
        gemma3.NORM_SHIFT,
        lambda gguf, _rope_freqs: gemma3.gemma3_config(gguf),
        gemma3.CHAT_TEMPLATE,
        gemma3.TEMPLATE_TOKENS,
    ),
}


def architecture_of(gguf: GGUFFile) -> Architecture:
    arch = ARCHITECTURES.get(str(gguf.arch or ""))
    if arch is None:  # the header check refuses these first; this guards a list out of step
        raise ModelFormatError(
            f"{gguf.path.name} holds a '{gguf.arch}' model; anechat imports only: {', '.join(ARCHITECTURES)}",
            hint="use an MLX or Hugging Face copy of this model instead",
        )
    return arch
