"""The decoder (:mod:`anechat.engines.modeling.decoder`, every supported family) in the shape
the Apple Neural Engine likes.

What is Core ML's own: every projection is a 1x1 ``Conv2d`` over (B, C, 1, S) tensors, the
rotary tables are fp16 constants gathered by position, the causal mask is an input (the
sliding-window layers narrow it in the graph from ``position_ids``), and the KV cache is one
registered buffer that coremltools turns into a Core ML state: keys of layer ``L`` at index
``L``, values at ``num_layers + L`` (the cache spans the whole context for every layer).

Three parts, as the ANEMLL layout has them: :class:`Embeddings`, :class:`FFNChunk` (a run of
decoder layers; ``mode`` picks the ``infer`` or ``prefill`` graph to trace; the last chunk
applies the final norm, once) and :class:`LMHead` (a projection split into several outputs).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from anechat.engines.errors import ModelFormatError
from anechat.engines.modeling.decoder import DecoderLayer, Step, embedding_table, final_norm, input_scale, lm_head_weight, tensor
from anechat.engines.modeling.rope import rope_tables
from anechat.engines.modeling.spec import SLIDING, ModelSpec

#: the KV state's name; the buffer name becomes the Core ML state name
STATE_NAME = "model_model_kv_cache_0"
#: keys beyond a sliding window: finite, so fp16 stays free of NaNs
MASKED = -30000.0


def conv1x1(weight: np.ndarray, dtype: torch.dtype, bias: np.ndarray | None = None) -> nn.Conv2d:
    """A linear layer (out, in) as a 1x1 convolution."""
    out_ch, in_ch = weight.shape
    conv = nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=bias is not None, device="meta")  # no random init: replaced below
    conv.weight = nn.Parameter(tensor(weight, dtype).reshape(out_ch, in_ch, 1, 1), requires_grad=False)
    if bias is not None:
        conv.bias = nn.Parameter(tensor(bias, dtype), requires_grad=False)
    return conv


def to_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, S, C) -> (B, C, 1, S)."""
    return x.permute(0, 2, 1).unsqueeze(2)


def from_channels(x: torch.Tensor) -> torch.Tensor:
    """(B, C, 1, S) -> (B, S, C)."""
    return x.squeeze(2).permute(0, 2, 1)


class ConvLinear(nn.Module):
    """A projection of (1, S, C) tensors run as a 1x1 conv in the channel layout."""

    def __init__(self, weight: np.ndarray, bias: np.ndarray | None, dtype: torch.dtype) -> None:
        super().__init__()
        self.conv = conv1x1(weight, dtype, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return from_channels(self.conv(to_channels(x)))


def state_shape(spec: ModelSpec, state_length: int) -> tuple[int, int, int, int]:
    return (2 * spec.num_layers, spec.num_kv_heads, state_length, spec.head_dim)


class FFNChunk(nn.Module):
    """Decoder layers ``[start, end)``; the last chunk also owns the final norm.

    ``mode`` is "infer" or "prefill". Both take any number of positions; the last chunk applies
    the final RMSNorm, in "prefill" to the first position only: for one token that is the
    same as "infer", so one traced "prefill" program serves both Core ML functions (the
    runtime ignores the last chunk's prefill output), while "infer" on many positions gives
    every position's normed state (the torch references of calibration and ``--check``).
    """

    def __init__(self, spec: ModelSpec, weights: dict, start: int, end: int, state_length: int, dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        self.mode = "infer"
        self.spec = spec
        self.head_dim = spec.head_dim
        self.group = spec.num_heads // spec.num_kv_heads
        self.is_last = end == spec.num_layers
        self.layers = nn.ModuleList(DecoderLayer(spec, weights, i, ConvLinear, dtype) for i in range(start, end))
        self.kinds = sorted({spec.layer_type(i) for i in range(start, end)})
        for kind in self.kinds:
            cos, sin = rope_tables(spec, state_length, kind)
            self.register_buffer(f"rope_cos_{kind}", tensor(cos, dtype), persistent=False)
            self.register_buffer(f"rope_sin_{kind}", tensor(sin, dtype), persistent=False)
        if SLIDING in self.kinds:
            self.register_buffer("key_index", torch.arange(state_length, dtype=torch.int32), persistent=False)
        self.register_buffer(STATE_NAME, torch.zeros(state_shape(spec, state_length), dtype=dtype))
        if self.is_last:
            self.norm = final_norm(spec, weights, dtype)

    @property
    def kv_cache(self) -> torch.Tensor:
        return getattr(self, STATE_NAME)

    def forward(self, hidden_states, position_ids, causal_mask, current_pos):
        seq = hidden_states.shape[1]
        pos = current_pos[0]
        cache = self.kv_cache
        values_at = self.spec.num_layers

        def store(layer: int, k: torch.Tensor, v: torch.Tensor):
            cache[layer : layer + 1, :, pos : pos + seq, :] = k
            cache[values_at + layer : values_at + layer + 1, :, pos : pos + seq, :] = v
            return cache[layer : layer + 1], cache[values_at + layer : values_at + layer + 1]

        step = Step.build(self, position_ids, causal_mask, MASKED, store)
        x = hidden_states
        for layer in self.layers:
            x = layer(x, step)
        if self.is_last:
            return self.norm(x[:, 0:1, :] if self.mode == "prefill" else x)
        return x


class Embeddings(nn.Module):
    """Token ids (1, S) -> hidden states (1, S, H) (Gemma: scaled by √hidden)."""

    def __init__(self, spec: ModelSpec, weights: dict, dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        table = embedding_table(spec, weights)
        self.embed_tokens = nn.Embedding(table.shape[0], table.shape[1], device="meta")  # no random init: replaced below
        self.embed_tokens.weight = nn.Parameter(tensor(table, dtype), requires_grad=False)
        self.scale = input_scale(spec)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        x = self.embed_tokens(input_ids)
        return x * self.scale if self.scale != 1.0 else x


class LMHead(nn.Module):
    """Normed hidden state (1, 1, H) -> ``len(sizes)`` logit slices (1, 1, V_i)."""

    def __init__(self, spec: ModelSpec, weights: dict, sizes: list[int], dtype: torch.dtype = torch.float16) -> None:
        super().__init__()
        head = lm_head_weight(spec, weights)
        if head.ndim != 2 or head.shape[1] != spec.hidden_size or head.shape[0] != sum(sizes):
            raise ModelFormatError(f"the LM head has shape {head.shape}, expected ({sum(sizes)}, {spec.hidden_size})")
        bounds = np.cumsum([0, *sizes])
        self.heads = nn.ModuleList(conv1x1(head[a:b], dtype) for a, b in zip(bounds[:-1], bounds[1:]))

    def forward(self, hidden_states: torch.Tensor):
        x = to_channels(hidden_states)
        return tuple(from_channels(conv(x)) for conv in self.heads)

