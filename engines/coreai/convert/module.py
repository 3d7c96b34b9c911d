"""The decoder (:mod:`anechat.engines.modeling.decoder`, every supported family) in the shape
Core AI's runtime runs fast, for ``torch.export``.

The model itself (norms, rope, attention variants, MLPs, Gemma's sliding-window layers) is
the shared description; what is Core AI's own is dictated by its runtime (facts measured on
its Linux build):

- every linear weight is stored pre-transposed and applied as ``x @ W_t`` (``nn.Linear``
  transposes its weight on every call: 10-400x slower);
- one key and one value buffer per layer (writing into one stacked buffer rewrites it
  whole on every step), written with ONE index tensor (``index_copy``: two index tensors
  into a stacked buffer abort the process);
- int32 inputs only (``input_ids``, ``current_pos``); the causal (and sliding-window) masks
  are computed in the graph from ``current_pos``; logits come out as float32 whatever the
  weights' dtype.

The buffers ``k_cache_{i}`` / ``v_cache_{i}`` become the asset's states. The converter exports
the module twice: ``infer`` (one token) and ``prefill`` (a batch); both return the logits of
every position they were given (``prefill``'s let a bench score a text in batches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from anechat.engines.errors import ModelFormatError
from anechat.engines.modeling.decoder import DecoderLayer, Step, embedding_table, final_norm, input_scale, lm_head_weight
from anechat.engines.modeling.decoder import tensor as _tensor
from anechat.engines.modeling.rope import rope_tables
from anechat.engines.modeling.spec import ModelSpec

#: masked attention scores: finite, so fp16 / bf16 stay free of NaNs
MASKED = -30000.0


@dataclass(frozen=True)
class Precision:
    """The dtype policy: ``weights`` for the stored matmul / embedding weights, ``compute``
    for the numerically sensitive path (residual stream, RMSNorm, rope, attention scores and
    softmax, the KV cache, logits). bf16 keeps the weights in bf16 and computes in fp32:
    the MLX engine runs the default model in fp32, and an all-bf16 graph drifts from it."""

    weights: torch.dtype
    compute: torch.dtype

    @classmethod
    def of(cls, dtype: torch.dtype) -> "Precision":
        return cls(dtype, torch.float32 if dtype == torch.bfloat16 else dtype)

    def store_weights(self, model: nn.Module) -> None:
        """Cast the linear and embedding weights of a model built in ``compute`` to ``weights``."""
        for m in model.modules():
            if isinstance(m, Linear):
                m.weight_t.data = m.weight_t.data.to(self.weights)  # a bias stays in the compute dtype
            elif isinstance(m, nn.Embedding):
                m.weight.data = m.weight.data.to(self.weights)


def state_names(num_layers: int) -> list[str]:
    """The asset's state names, in the order of the exported program's buffers."""
    return [f"{kind}_cache_{i}" for i in range(num_layers) for kind in ("k", "v")]


class Linear(nn.Module):
    """A linear layer holding its (out, in) weight transposed: ``x @ W_t (+ bias)``."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight_t = nn.Parameter(_tensor(np.asarray(weight).T, dtype), requires_grad=False)
        self.bias = None if bias is None else nn.Parameter(_tensor(bias, dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.weight_t.to(x.dtype))  # bf16 weights: upcast, the matmul in fp32
        return y if self.bias is None else y + self.bias


class CoreAILlama(nn.Module):
    """The whole model with its KV cache. ``forward(input_ids (1, S) int32, current_pos (1,) int32)``."""

    def __init__(self, spec: ModelSpec, weights: dict, context: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        precision, dtype = Precision.of(dtype), Precision.of(dtype).compute
        self.spec = spec
        self.context, self.head_dim = context, spec.head_dim
        self.group = spec.num_heads // spec.num_kv_heads
        table = embedding_table(spec, weights)
        self.embed_tokens = nn.Embedding(table.shape[0], table.shape[1])
        self.embed_tokens.weight = nn.Parameter(_tensor(table, dtype), requires_grad=False)
        self.embed_scale = input_scale(spec)
        self.layers = nn.ModuleList(DecoderLayer(spec, weights, i, Linear, dtype) for i in range(spec.num_layers))
        shape = (1, spec.num_kv_heads, context, spec.head_dim)
        for name in state_names(spec.num_layers):
            self.register_buffer(name, torch.zeros(shape, dtype=dtype))
        self.norm = final_norm(spec, weights, dtype)
        head = lm_head_weight(spec, weights)
        if head.ndim != 2 or head.shape[1] != spec.hidden_size:
            raise ModelFormatError(f"the LM head has shape {head.shape}, expected (vocab, {spec.hidden_size})")
        self.lm_head = Linear(head, None, dtype)
        self.kinds = sorted({spec.layer_type(i) for i in range(spec.num_layers)})
        for kind in self.kinds:
            cos, sin = rope_tables(spec, context, kind)
            self.register_buffer(f"rope_cos_{kind}", _tensor(cos, dtype), persistent=False)
            self.register_buffer(f"rope_sin_{kind}", _tensor(sin, dtype), persistent=False)
        self.register_buffer("key_index", torch.arange(context, dtype=torch.int32), persistent=False)
        self.dtype = dtype
        precision.store_weights(self)

    def _store(self, positions: torch.Tensor):
        index = positions if torch.compiler.is_exporting() else positions.long()  # eager torch wants int64

        def store(layer: int, k: torch.Tensor, v: torch.Tensor):
            keys, values = getattr(self, f"k_cache_{layer}"), getattr(self, f"v_cache_{layer}")
            keys.index_copy_(2, index, k)
            values.index_copy_(2, index, v)
            return keys, values

        return store

    def forward(self, input_ids: torch.Tensor, current_pos: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        positions = current_pos + torch.arange(seq, dtype=torch.int32)  # (S,)
        visible = self.key_index.reshape(1, -1) <= positions.reshape(-1, 1)  # (S, ctx)
        causal = torch.where(visible, 0.0, MASKED).to(self.dtype).reshape(1, 1, seq, self.context)
        step = Step.build(self, positions, causal, MASKED, self._store(positions))
        x = self.embed_tokens(input_ids).to(self.dtype)
        if self.embed_scale != 1.0:
            x = x * self.embed_scale
        for layer in self.layers:
            x = layer(x, step)
        return self.lm_head(self.norm(x)).to(torch.float32)  # prefill too: teacher-forced scoring in batches
