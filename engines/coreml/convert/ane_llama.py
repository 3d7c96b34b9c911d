"""The llama decoder rebuilt in the shape the Apple Neural Engine likes.

Not a trace of transformers' code: every linear layer is a 1x1 ``Conv2d`` over (B, C, 1, S)
tensors, RMSNorm is ``layer_norm`` over ``[x, -x]`` (whose mean is zero, so layer_norm's
variance is exactly the mean square), rotary tables are constants gathered by position,
grouped-query attention folds the query heads of a group into the sequence axis (no copies
of the cache), the causal mask is an input and the KV cache is one registered buffer that
coremltools turns into a Core ML state.

Three parts, as the ANEMLL layout has them: :class:`Embeddings`, :class:`FFNChunk` (a run of
decoder layers; ``mode`` picks the ``infer`` or ``prefill`` graph to trace) and :class:`LMHead`
(a projection split into several outputs).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anechat.engines.errors import ModelFormatError

from anechat.engines.coreml.convert.rope import rope_tables
from anechat.engines.coreml.convert.source import LlamaSpec, lm_head_weight, require

#: the KV state's name; the buffer name becomes the Core ML state name
STATE_NAME = "model_model_kv_cache_0"


def _tensor(value: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).to(dtype)


def conv1x1(weight: np.ndarray, dtype: torch.dtype) -> nn.Conv2d:
    """A linear layer (out, in) as a bias-free 1x1 convolution."""
    out_ch, in_ch = weight.shape
    conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False)
    conv.weight = nn.Parameter(_tensor(weight, dtype).reshape(out_ch, in_ch, 1, 1), requires_grad=False)
    return conv


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, S, C) -> (B, C, 1, S)."""
    return x.permute(0, 2, 1).unsqueeze(2)


def from_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, S) -> (B, S, C)."""
    return x.squeeze(2).permute(0, 2, 1)


class RMSNorm(nn.Module):
    """RMSNorm as ``layer_norm([x, -x])[..., :H] * weight`` over the last (channel) axis."""

    def __init__(self, weight: np.ndarray, eps: float, dtype: torch.dtype) -> None:
        super().__init__()
        self.eps = eps
        self.size = int(weight.shape[0])
        self.weight = nn.Parameter(_tensor(weight, dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        doubled = torch.cat([x, -x], dim=-1)
        normed = F.layer_norm(doubled, (2 * self.size,), eps=self.eps)
        return normed[..., : self.size] * self.weight


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    """Grouped-query attention over the shared KV state.

    Keys of global layer ``L`` live at state index ``L``, values at ``num_layers_total + L``.
    """

    def __init__(self, spec: LlamaSpec, weights: dict, layer: int, dtype: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{layer}.self_attn."
        h, hd = spec.hidden_size, spec.head_dim
        self.layer = layer
        self.value_index = spec.num_layers + layer
        self.heads, self.kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, hd
        self.group = spec.num_heads // spec.num_kv_heads
        self.scale = 1.0 / math.sqrt(hd)
        self.q_proj = conv1x1(require(weights, p + "q_proj.weight", (spec.num_heads * hd, h)), dtype)
        self.k_proj = conv1x1(require(weights, p + "k_proj.weight", (spec.num_kv_heads * hd, h)), dtype)
        self.v_proj = conv1x1(require(weights, p + "v_proj.weight", (spec.num_kv_heads * hd, h)), dtype)
        self.o_proj = conv1x1(require(weights, p + "o_proj.weight", (h, spec.num_heads * hd)), dtype)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """(1, n*hd, 1, S) -> (1, n, S, hd)."""
        return x.reshape(1, n, self.head_dim, x.shape[-1]).permute(0, 1, 3, 2)

    def forward(self, x, cos, sin, mask, pos, cache: torch.Tensor) -> torch.Tensor:
        """``mask`` is the causal mask already repeated for the query heads of a group (1, 1, group*S, ctx)."""
        seq = x.shape[1]
        xc = to_channels(x)
        q = self._heads(self.q_proj(xc), self.heads)
        k = self._heads(self.k_proj(xc), self.kv_heads)
        v = self._heads(self.v_proj(xc), self.kv_heads)
        q = (q * cos + rotate_half(q) * sin) * self.scale
        k = k * cos + rotate_half(k) * sin
        cache[self.layer : self.layer + 1, :, pos : pos + seq, :] = k
        cache[self.value_index : self.value_index + 1, :, pos : pos + seq, :] = v
        keys = cache[self.layer : self.layer + 1]  # (1, kv, ctx, hd)
        values = cache[self.value_index : self.value_index + 1]
        # fold the query heads of each kv group into the sequence axis: (1, kv, group*S, hd)
        q = q.reshape(1, self.kv_heads, self.group * seq, self.head_dim)
        scores = torch.matmul(q, keys.transpose(2, 3))
        probs = torch.softmax(scores + mask, dim=-1)
        out = torch.matmul(probs, values)  # (1, kv, group*S, hd)
        out = out.reshape(1, self.heads, seq, self.head_dim).permute(0, 1, 3, 2)
        out = out.reshape(1, self.heads * self.head_dim, 1, seq)
        return from_channels(self.o_proj(out))


class MLP(nn.Module):
    def __init__(self, spec: LlamaSpec, weights: dict, layer: int, dtype: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{layer}.mlp."
        h, i = spec.hidden_size, spec.intermediate_size
        self.gate_proj = conv1x1(require(weights, p + "gate_proj.weight", (i, h)), dtype)
        self.up_proj = conv1x1(require(weights, p + "up_proj.weight", (i, h)), dtype)
        self.down_proj = conv1x1(require(weights, p + "down_proj.weight", (h, i)), dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = to_channels(x)
        return from_channels(self.down_proj(F.silu(self.gate_proj(xc)) * self.up_proj(xc)))


class DecoderLayer(nn.Module):
    def __init__(self, spec: LlamaSpec, weights: dict, layer: int, dtype: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{layer}."
        h = spec.hidden_size
        self.input_layernorm = RMSNorm(require(weights, p + "input_layernorm.weight", (h,)), spec.rms_norm_eps, dtype)
        self.self_attn = Attention(spec, weights, layer, dtype)
        self.post_attention_layernorm = RMSNorm(
            require(weights, p + "post_attention_layernorm.weight", (h,)), spec.rms_norm_eps, dtype
        )
        self.mlp = MLP(spec, weights, layer, dtype)

    def forward(self, x, cos, sin, mask, pos, cache):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, pos, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


def state_shape(spec: LlamaSpec, state_length: int) -> tuple[int, int, int, int]:
    return (2 * spec.num_layers, spec.num_kv_heads, state_length, spec.head_dim)


class FFNChunk(nn.Module):
    """Decoder layers ``[start, end)``; the last chunk also owns the final norm.

    ``mode`` is "infer" (one token) or "prefill" (a batch); the last chunk's infer applies the
    final RMSNorm, its prefill returns only the first position (its output is not used).
    """

    def __init__(
        self,
        spec: LlamaSpec,
        weights: dict,
        start: int,
        end: int,
        state_length: int,
        dtype: torch.dtype = torch.float16,
    ) -> None:
        super().__init__()
        self.mode = "infer"
        self.head_dim = spec.head_dim
        self.group = spec.num_heads // spec.num_kv_heads
        self.is_last = end == spec.num_layers
        self.layers = nn.ModuleList(DecoderLayer(spec, weights, i, dtype) for i in range(start, end))
        cos, sin = rope_tables(spec, state_length)
        self.register_buffer("rope_cos", _tensor(cos, dtype), persistent=False)
        self.register_buffer("rope_sin", _tensor(sin, dtype), persistent=False)
        self.register_buffer(STATE_NAME, torch.zeros(state_shape(spec, state_length), dtype=dtype))
        if self.is_last:
            h = spec.hidden_size
            self.norm = RMSNorm(require(weights, "model.norm.weight", (h,)), spec.rms_norm_eps, dtype)

    @property
    def kv_cache(self) -> torch.Tensor:
        return getattr(self, STATE_NAME)

    def forward(self, hidden_states, position_ids, causal_mask, current_pos):
        seq = hidden_states.shape[1]
        pos = current_pos[0]
        cos = torch.index_select(self.rope_cos, 0, position_ids).reshape(1, 1, seq, self.head_dim)
        sin = torch.index_select(self.rope_sin, 0, position_ids).reshape(1, 1, seq, self.head_dim)
        mask = causal_mask.repeat(1, 1, self.group, 1) if self.group > 1 else causal_mask
        x = hidden_states
        cache = self.kv_cache
        for layer in self.layers:
            x = layer(x, cos, sin, mask, pos, cache)
        if self.is_last:
            if self.mode == "prefill":
                return x[:, 0:1, :]
            return self.norm(x)
        return x


class Embeddings(nn.Module):
    """Token ids (1, S) -> hidden states (1, S, H)."""

    def __init__(self, spec: LlamaSpec, weights: dict, dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        table = weights.get("model.embed_tokens.weight")
        if table is None or table.ndim != 2 or table.shape[1] != spec.hidden_size:
            raise_format("model.embed_tokens.weight is missing or has the wrong shape")
        self.embed_tokens = nn.Embedding(table.shape[0], table.shape[1])
        self.embed_tokens.weight = nn.Parameter(_tensor(table, dtype), requires_grad=False)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.embed_tokens(input_ids)


class LMHead(nn.Module):
    """Normed hidden state (1, 1, H) -> ``len(sizes)`` logit slices (1, 1, V_i)."""

    def __init__(self, spec: LlamaSpec, weights: dict, sizes: list[int], dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        head = lm_head_weight(spec, weights)
        if head.ndim != 2 or head.shape[1] != spec.hidden_size or head.shape[0] != sum(sizes):
            raise_format(f"the LM head has shape {head.shape}, expected ({sum(sizes)}, {spec.hidden_size})")
        bounds = np.cumsum([0, *sizes])
        self.heads = nn.ModuleList(conv1x1(head[a:b], dtype) for a, b in zip(bounds[:-1], bounds[1:]))

    def forward(self, hidden_states: torch.Tensor):
        x = to_channels(hidden_states)
        return tuple(from_channels(conv(x)) for conv in self.heads)


def raise_format(message: str):
    raise ModelFormatError(message)
