"""The llama decoder in the shape Core AI's runtime runs fast, for ``torch.export``.

Shared with the Core ML converter's module: the rotary tables (:mod:`..coreml.convert.rope`),
RMSNorm and ``rotate_half`` (:mod:`..coreml.convert.ane_llama`) and the grouped-query
attention over a KV cache (:func:`anechat.engines.modeling.attention.grouped_attention`).
What differs is dictated by the runtime (facts measured on its Linux build):

- every linear weight is stored pre-transposed and applied as ``x @ W_t`` (``nn.Linear``
  transposes its weight on every call: 10-400x slower);
- one key and one value buffer per layer (writing into one stacked buffer rewrites it
  whole on every step), written with ONE index tensor (``index_copy``: two index tensors
  into a stacked buffer abort the process);
- int32 inputs only (``input_ids``, ``current_pos``); the causal mask is computed in the
  graph from ``current_pos``; logits come out as float32 whatever the weights' dtype.

The buffers ``k_cache_{i}`` / ``v_cache_{i}`` become the asset's states. The converter exports
the module twice: ``infer`` (one token) and ``prefill`` (a batch); both return the logits of
every position they were given (``prefill``'s let a bench score a text in batches).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from anechat.engines.coreml.convert.ane_llama import RMSNorm, rotate_half
from anechat.engines.coreml.convert.rope import rope_tables
from anechat.engines.coreml.convert.source import LlamaSpec, lm_head_weight, require
from anechat.engines.errors import ModelFormatError
from anechat.engines.modeling.attention import fold_mask, grouped_attention

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
            if isinstance(m, (Linear, nn.Embedding)):
                for p in m.parameters():
                    p.data = p.data.to(self.weights)


def state_names(num_layers: int) -> list[str]:
    """The asset's state names, in the order of the exported program's buffers."""
    return [f"{kind}_cache_{i}" for i in range(num_layers) for kind in ("k", "v")]


def _tensor(value: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).to(dtype)


class Linear(nn.Module):
    """A bias-free linear layer holding its (out, in) weight transposed: ``x @ W_t``."""

    def __init__(self, weight: np.ndarray, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight_t = nn.Parameter(_tensor(np.asarray(weight).T, dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.matmul(x, self.weight_t.to(x.dtype))  # bf16 weights: upcast, the matmul in fp32


class Attention(nn.Module):
    def __init__(self, spec: LlamaSpec, weights: dict, layer: int, context: int, dtype: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{layer}.self_attn."
        h, hd = spec.hidden_size, spec.head_dim
        self.heads, self.kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, hd
        self.scale = hd**-0.5
        self.q_proj = Linear(require(weights, p + "q_proj.weight", (spec.num_heads * hd, h)), dtype)
        self.k_proj = Linear(require(weights, p + "k_proj.weight", (spec.num_kv_heads * hd, h)), dtype)
        self.v_proj = Linear(require(weights, p + "v_proj.weight", (spec.num_kv_heads * hd, h)), dtype)
        self.o_proj = Linear(require(weights, p + "o_proj.weight", (h, spec.num_heads * hd)), dtype)
        shape = (1, spec.num_kv_heads, context, hd)
        self.register_buffer(f"k_cache_{layer}", torch.zeros(shape, dtype=dtype))
        self.register_buffer(f"v_cache_{layer}", torch.zeros(shape, dtype=dtype))
        self.k_name, self.v_name = f"k_cache_{layer}", f"v_cache_{layer}"

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """(1, S, n*hd) -> (1, n, S, hd)."""
        return x.reshape(1, x.shape[1], n, self.head_dim).transpose(1, 2)

    def forward(self, x, cos, sin, mask, positions):
        seq = x.shape[1]
        q = self._heads(self.q_proj(x), self.heads)
        k = self._heads(self.k_proj(x), self.kv_heads)
        v = self._heads(self.v_proj(x), self.kv_heads)
        q = (q * cos + rotate_half(q) * sin) * self.scale
        k = k * cos + rotate_half(k) * sin
        keys, values = getattr(self, self.k_name), getattr(self, self.v_name)
        index = positions if torch.compiler.is_exporting() else positions.long()  # eager torch wants int64
        keys.index_copy_(2, index, k)
        values.index_copy_(2, index, v)
        out = grouped_attention(q, keys, values, mask, self.kv_heads)  # (1, heads, S, hd)
        return self.o_proj(out.transpose(1, 2).reshape(1, seq, self.heads * self.head_dim))


class MLP(nn.Module):
    def __init__(self, spec: LlamaSpec, weights: dict, layer: int, dtype: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{layer}.mlp."
        h, i = spec.hidden_size, spec.intermediate_size
        self.gate_proj = Linear(require(weights, p + "gate_proj.weight", (i, h)), dtype)
        self.up_proj = Linear(require(weights, p + "up_proj.weight", (i, h)), dtype)
        self.down_proj = Linear(require(weights, p + "down_proj.weight", (h, i)), dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(torch.nn.functional.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, spec: LlamaSpec, weights: dict, layer: int, context: int, dtype: torch.dtype) -> None:
        super().__init__()
        p, h, eps = f"model.layers.{layer}.", spec.hidden_size, spec.rms_norm_eps
        self.input_layernorm = RMSNorm(require(weights, p + "input_layernorm.weight", (h,)), eps, dtype)
        self.self_attn = Attention(spec, weights, layer, context, dtype)
        self.post_attention_layernorm = RMSNorm(require(weights, p + "post_attention_layernorm.weight", (h,)), eps, dtype)
        self.mlp = MLP(spec, weights, layer, dtype)

    def forward(self, x, cos, sin, mask, positions):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, positions)
        return x + self.mlp(self.post_attention_layernorm(x))


class CoreAILlama(nn.Module):
    """The whole model with its KV cache. ``forward(input_ids (1, S) int32, current_pos (1,) int32)``."""

    def __init__(self, spec: LlamaSpec, weights: dict, context: int, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        precision, dtype = Precision.of(dtype), Precision.of(dtype).compute
        self.context, self.head_dim = context, spec.head_dim
        self.group = spec.num_heads // spec.num_kv_heads
        table = weights.get("model.embed_tokens.weight")
        if table is None or table.ndim != 2 or table.shape[1] != spec.hidden_size:
            raise ModelFormatError("model.embed_tokens.weight is missing or has the wrong shape")
        self.embed_tokens = nn.Embedding(table.shape[0], table.shape[1])
        self.embed_tokens.weight = nn.Parameter(_tensor(table, dtype), requires_grad=False)
        self.layers = nn.ModuleList(DecoderLayer(spec, weights, i, context, dtype) for i in range(spec.num_layers))
        self.norm = RMSNorm(require(weights, "model.norm.weight", (spec.hidden_size,)), spec.rms_norm_eps, dtype)
        head = lm_head_weight(spec, weights)
        if head.ndim != 2 or head.shape[1] != spec.hidden_size:
            raise ModelFormatError(f"the LM head has shape {head.shape}, expected (vocab, {spec.hidden_size})")
        self.lm_head = Linear(head, dtype)
        cos, sin = rope_tables(spec, context)
        self.register_buffer("rope_cos", _tensor(cos, dtype), persistent=False)
        self.register_buffer("rope_sin", _tensor(sin, dtype), persistent=False)
        self.register_buffer("key_index", torch.arange(context, dtype=torch.int32), persistent=False)
        self.dtype = dtype
        precision.store_weights(self)

    def forward(self, input_ids: torch.Tensor, current_pos: torch.Tensor) -> torch.Tensor:
        seq = input_ids.shape[1]
        positions = current_pos + torch.arange(seq, dtype=torch.int32)  # (S,)
        cos = torch.index_select(self.rope_cos, 0, positions).reshape(1, 1, seq, self.head_dim)
        sin = torch.index_select(self.rope_sin, 0, positions).reshape(1, 1, seq, self.head_dim)
        visible = self.key_index.reshape(1, -1) <= positions.reshape(-1, 1)  # (S, ctx)
        mask = fold_mask(torch.where(visible, 0.0, MASKED).to(self.dtype).reshape(1, 1, seq, self.context), self.group)
        x = self.embed_tokens(input_ids).to(self.dtype)
        for layer in self.layers:
            x = layer(x, cos, sin, mask, positions)
        return self.lm_head(self.norm(x)).to(torch.float32)  # prefill too: teacher-forced scoring in batches
