"""The decoder both converters trace, written once for every family a :class:`ModelSpec` describes.

Tensors flow as (1, S, C). What a runtime decides is handed in:

- ``linear(weight (out, in), bias (out,) | None, dtype)`` builds a projection module
  (Core ML: a 1x1 conv over the ANE's channel layout; Core AI: a pre-transposed matmul);
- a :class:`Step` per forward call carries the rope rows and the masks of each layer kind
  (global / sliding) and ``store(layer, k, v) -> (keys, values)``, which writes the new keys
  and values into the runtime's KV cache and returns the whole cache of that layer.

Scaling for fp16 (``spec.residual_scale``): the residual stream is carried multiplied by a
power of two. The embeddings and every branch's last step (Gemma's post-norms, otherwise
``o_proj`` and ``down_proj``) are scaled by it; the norms that read the stream are
scale-invariant, their ``eps`` is scaled by its square, so the model computes the same function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anechat.engines.errors import ModelFormatError
from anechat.engines.modeling.attention import fold_mask, grouped_attention, sliding_mask
from anechat.engines.modeling.spec import SLIDING, ModelSpec

Linear = Callable[[np.ndarray, "np.ndarray | None", torch.dtype], nn.Module]


def tensor(value: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value, dtype=np.float32)).to(dtype)


def require(weights: dict[str, np.ndarray], name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The named tensor, checked against the shape the config promises."""
    if name not in weights:
        raise ModelFormatError(f"the weights lack {name}")
    value = weights[name]
    if tuple(value.shape) != tuple(shape):
        raise ModelFormatError(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
    return value


def lm_head_weight(spec: ModelSpec, weights: dict[str, np.ndarray]) -> np.ndarray:
    """The LM head matrix (the embedding matrix when the model ties them)."""
    if "lm_head.weight" in weights:
        return weights["lm_head.weight"]
    if spec.tie_word_embeddings:
        return weights["model.embed_tokens.weight"]
    raise ModelFormatError("the weights lack lm_head.weight (and the model does not tie it to the embeddings)")


def embedding_table(spec: ModelSpec, weights: dict[str, np.ndarray]) -> np.ndarray:
    table = weights.get("model.embed_tokens.weight")
    if table is None or table.ndim != 2 or table.shape[1] != spec.hidden_size:
        raise ModelFormatError("model.embed_tokens.weight is missing or has the wrong shape")
    return table


class RMSNorm(nn.Module):
    """RMSNorm as ``layer_norm([x, -x])[..., :H] * weight`` over the last axis ([x, -x] has mean
    zero, so layer_norm's variance is exactly the mean square: one fused op on the ANE).
    ``weight`` is ``(offset + w) * scale``: Gemma's ``1 + w``, times the residual scale."""

    def __init__(self, weight: np.ndarray, eps: float, dtype: torch.dtype, offset: float = 0.0, scale: float = 1.0) -> None:
        super().__init__()
        self.eps = eps
        self.size = int(weight.shape[0])
        self.weight = nn.Parameter(tensor((offset + weight.astype(np.float64)) * scale, dtype), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        doubled = torch.cat([x, -x], dim=-1)
        normed = F.layer_norm(doubled, (2 * self.size,), eps=self.eps)
        return normed[..., : self.size] * self.weight


def norm(spec: ModelSpec, weights: dict, name: str, size: int, dtype: torch.dtype, *, reads_stream: bool = False, scale: float = 1.0) -> RMSNorm:
    """The named RMSNorm; ``reads_stream``: its input is the (scaled) residual stream."""
    eps = spec.rms_norm_eps * (spec.residual_scale**2 if reads_stream else 1.0)
    return RMSNorm(require(weights, name, (size,)), eps, dtype, spec.norm_offset, scale)


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


@dataclass
class Step:
    """What every layer of one forward call shares: rope rows (1, 1, S, hd) and folded masks
    (1, 1, group*S, ctx) by layer kind, and the runtime's cache writer."""

    cos: dict[str, torch.Tensor]
    sin: dict[str, torch.Tensor]
    mask: dict[str, torch.Tensor]
    store: Callable[[int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

    @classmethod
    def build(cls, owner: nn.Module, positions: torch.Tensor, causal: torch.Tensor, masked: float, store) -> "Step":
        """The step of one call of ``owner`` (a converter's module holding ``spec``, ``kinds``,
        ``head_dim``, ``group``, ``key_index`` and ``rope_cos_{kind}`` / ``rope_sin_{kind}``
        tables) at ``positions`` (S,), from its causal mask (1, 1, S, ctx)."""
        seq = positions.shape[0]
        cos, sin, masks = {}, {}, {}
        for kind in owner.kinds:
            cos[kind] = torch.index_select(getattr(owner, f"rope_cos_{kind}"), 0, positions).reshape(1, 1, seq, owner.head_dim)
            sin[kind] = torch.index_select(getattr(owner, f"rope_sin_{kind}"), 0, positions).reshape(1, 1, seq, owner.head_dim)
            mask = causal
            if kind == SLIDING:
                mask = sliding_mask(causal, positions, owner.key_index, owner.spec.sliding_window, masked)
            masks[kind] = fold_mask(mask, owner.group)
        return cls(cos, sin, masks, store)


def _bias(spec_has: bool, weights: dict, name: str, size: int) -> np.ndarray | None:
    return require(weights, name, (size,)) if spec_has else None


class Attention(nn.Module):
    """Grouped-query attention: optional q/k/v (and o) biases, per-head q/k RMSNorm, rope of
    the layer's kind, query scaling, and a global or sliding-window mask."""

    def __init__(self, spec: ModelSpec, weights: dict, layer: int, linear: Linear, dtype: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{layer}.self_attn."
        h, hd, n, kv = spec.hidden_size, spec.head_dim, spec.num_heads, spec.num_kv_heads
        self.layer, self.kind = layer, spec.layer_type(layer)
        self.heads, self.kv_heads, self.head_dim, self.scale = n, kv, hd, spec.attention_scale
        self.q_proj = linear(require(weights, p + "q_proj.weight", (n * hd, h)), _bias(spec.qkv_bias, weights, p + "q_proj.bias", n * hd), dtype)
        self.k_proj = linear(require(weights, p + "k_proj.weight", (kv * hd, h)), _bias(spec.qkv_bias, weights, p + "k_proj.bias", kv * hd), dtype)
        self.v_proj = linear(require(weights, p + "v_proj.weight", (kv * hd, h)), _bias(spec.qkv_bias, weights, p + "v_proj.bias", kv * hd), dtype)
        out_scale = 1.0 if spec.sandwich_norms else spec.residual_scale  # without a post-norm, o_proj ends the branch
        o_weight = require(weights, p + "o_proj.weight", (h, n * hd)) * out_scale
        o_bias = _bias(spec.o_bias, weights, p + "o_proj.bias", h)
        self.o_proj = linear(o_weight, None if o_bias is None else o_bias * out_scale, dtype)
        self.qk_norm = spec.qk_norm
        if spec.qk_norm:
            self.q_norm = norm(spec, weights, p + "q_norm.weight", hd, dtype)
            self.k_norm = norm(spec, weights, p + "k_norm.weight", hd, dtype)

    def _heads(self, x: torch.Tensor, n: int) -> torch.Tensor:
        """(1, S, n*hd) -> (1, n, S, hd)."""
        return x.reshape(1, x.shape[1], n, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        seq = x.shape[1]
        q = self._heads(self.q_proj(x), self.heads)
        k = self._heads(self.k_proj(x), self.kv_heads)
        v = self._heads(self.v_proj(x), self.kv_heads)
        if self.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        cos, sin = step.cos[self.kind], step.sin[self.kind]
        q = (q * cos + rotate_half(q) * sin) * self.scale
        k = k * cos + rotate_half(k) * sin
        keys, values = step.store(self.layer, k, v)
        out = grouped_attention(q, keys, values, step.mask[self.kind], self.kv_heads)  # (1, heads, S, hd)
        return self.o_proj(out.transpose(1, 2).reshape(1, seq, self.heads * self.head_dim))


class MLP(nn.Module):
    """``down(act(gate(x)) * up(x))`` with SiLU or GELU-tanh."""

    def __init__(self, spec: ModelSpec, weights: dict, layer: int, linear: Linear, dtype: torch.dtype) -> None:
        super().__init__()
        p = f"model.layers.{layer}.mlp."
        h, i = spec.hidden_size, spec.intermediate_size
        out_scale = 1.0 if spec.sandwich_norms else spec.residual_scale
        self.gelu = spec.activation == "gelu_tanh"
        self.gate_proj = linear(require(weights, p + "gate_proj.weight", (i, h)), None, dtype)
        self.up_proj = linear(require(weights, p + "up_proj.weight", (i, h)), None, dtype)
        self.down_proj = linear(require(weights, p + "down_proj.weight", (h, i)) * out_scale, None, dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.gate_proj(x)
        gate = F.gelu(gate, approximate="tanh") if self.gelu else F.silu(gate)
        return self.down_proj(gate * self.up_proj(x))


class DecoderLayer(nn.Module):
    """Pre-norm attention and MLP around the residual stream; Gemma also norms each branch's output."""

    def __init__(self, spec: ModelSpec, weights: dict, layer: int, linear: Linear, dtype: torch.dtype) -> None:
        super().__init__()
        p, h, alpha = f"model.layers.{layer}.", spec.hidden_size, spec.residual_scale
        self.sandwich = spec.sandwich_norms
        self.input_layernorm = norm(spec, weights, p + "input_layernorm.weight", h, dtype, reads_stream=True)
        self.self_attn = Attention(spec, weights, layer, linear, dtype)
        if self.sandwich:
            self.post_attention_layernorm = norm(spec, weights, p + "post_attention_layernorm.weight", h, dtype, scale=alpha)
            self.pre_feedforward_layernorm = norm(spec, weights, p + "pre_feedforward_layernorm.weight", h, dtype, reads_stream=True)
            self.post_feedforward_layernorm = norm(spec, weights, p + "post_feedforward_layernorm.weight", h, dtype, scale=alpha)
        else:
            self.post_attention_layernorm = norm(spec, weights, p + "post_attention_layernorm.weight", h, dtype, reads_stream=True)
        self.mlp = MLP(spec, weights, layer, linear, dtype)

    def forward(self, x: torch.Tensor, step: Step) -> torch.Tensor:
        if self.sandwich:
            x = x + self.post_attention_layernorm(self.self_attn(self.input_layernorm(x), step))
            return x + self.post_feedforward_layernorm(self.mlp(self.pre_feedforward_layernorm(x)))
        x = x + self.self_attn(self.input_layernorm(x), step)
        return x + self.mlp(self.post_attention_layernorm(x))


def final_norm(spec: ModelSpec, weights: dict, dtype: torch.dtype) -> RMSNorm:
    """The norm after the last layer (applied once, by the part that owns the last layer)."""
    return norm(spec, weights, "model.norm.weight", spec.hidden_size, dtype, reads_stream=True)


def input_scale(spec: ModelSpec) -> float:
    """What the embedding rows are multiplied by: Gemma's √hidden, times the residual scale."""
    return spec.embed_scale * spec.residual_scale
