"""The shared decoder run eagerly in float32 over a whole text at once (no KV cache, no
runtime layout): what the converters' helpers measure the source model with."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anechat.engines.modeling.attention import fold_mask, sliding_mask
from anechat.engines.modeling.decoder import DecoderLayer, Step, embedding_table, input_scale, tensor
from anechat.engines.modeling.rope import rope_tables
from anechat.engines.modeling.spec import SLIDING, ModelSpec


class PlainLinear(nn.Module):
    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = tensor(weight, dtype)
        self.bias = None if bias is None else tensor(bias, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


def layer_outputs(spec: ModelSpec, weights: dict, ids: list[int]) -> list[torch.Tensor]:
    """The residual stream over ``ids`` (1, T, H): the scaled embeddings, then each layer's output."""
    t, dtype = len(ids), torch.float32
    positions = torch.arange(t, dtype=torch.int32)
    causal = torch.triu(torch.full((t, t), float("-inf")), diagonal=1).reshape(1, 1, t, t)
    group = spec.num_heads // spec.num_kv_heads
    cos, sin, masks = {}, {}, {}
    for kind in {spec.layer_type(i) for i in range(spec.num_layers)}:
        c, s = rope_tables(spec, t, kind)
        cos[kind], sin[kind] = (tensor(a, dtype).reshape(1, 1, t, spec.head_dim) for a in (c, s))
        mask = sliding_mask(causal, positions, positions, spec.sliding_window, float("-inf")) if kind == SLIDING else causal
        masks[kind] = fold_mask(mask, group)
    step = Step(cos, sin, masks, lambda _layer, k, v: (k, v))
    table = tensor(embedding_table(spec, weights), dtype)
    with torch.no_grad():
        x = table[torch.tensor([ids])] * input_scale(spec)
        stream = [x]
        for i in range(spec.num_layers):
            x = DecoderLayer(spec, weights, i, PlainLinear, dtype)(x, step)
            stream.append(x)
    return stream
