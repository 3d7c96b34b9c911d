"""LUT palettization of the torch module before export: k-means tables of our own, lowered
by coreai-torch into Core AI's ``lut_to_dense``.

Each large weight (every projection, the LM head, the embedding table) becomes uint8
indices, one table of ``2**bits`` values per ``group_size`` output channels and one scale
per output channel — the tables of :class:`anechat.engines.coreml.convert.palettize.LUTPalettizer`
(vectorised weighted k-means, values normalised per channel). The module computes the weight
with ``torch.ops.coreai.lut_to_dense`` (coreai-torch's custom op), so the exported graph
carries the compressed constants and coreai-torch writes them into the asset as sub-byte
indices + tables; the per-channel scale multiplies the matmul's output (or the gathered
rows), never the whole weight. coreai-opt's own pass on the converted program gives the same
ops but runs a k-means per group in Python (tens of minutes for a 135M model on 2 cores).

The indices / table buffers are named ``indices`` / ``lut``: coreai-torch finds the operands
to narrow (uint8 -> uint6 ...) by those names.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from anechat.engines.coreai.convert.compress import WEIGHT_THRESHOLD
from anechat.engines.coreai.convert.module import Linear
from anechat.engines.coreml.convert.palettize import LUTPalettizer


def register_lut_op() -> None:
    """Register ``torch.ops.coreai.lut_to_dense``: coreai-torch defines it in a private module
    (the one coreai-opt's own palettizer imports); a test fails loudly if it moves."""
    import coreai_torch._compression.custom_layers  # noqa: F401


def _lut_to_dense(indices: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    return torch.ops.coreai.lut_to_dense(indices, lut, 0)


class PalettizedLinear(nn.Module):
    """``(x @ lut_to_dense(indices, lut)) * scale (+ bias)``, the weight stored transposed, (in, out)."""

    def __init__(self, weight: np.ndarray, palettizer: LUTPalettizer, dtype: torch.dtype, bias: torch.Tensor | None = None) -> None:
        super().__init__()
        index, lut, scale = palettizer.tables(weight)  # weight (out, in): groups of output channels
        self.register_buffer("indices", torch.from_numpy(np.ascontiguousarray(index.T)))
        self.register_buffer("lut", torch.from_numpy(lut.astype(np.float32)).reshape(1, lut.shape[0], lut.shape[1], 1).to(dtype))
        self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)).to(dtype))
        self.bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight_t = _lut_to_dense(self.indices, self.lut)
        y = torch.matmul(x, weight_t.to(x.dtype)) * self.scale.to(x.dtype)  # as module.Linear: in x's (compute) dtype
        return y if self.bias is None else y + self.bias


class PalettizedEmbedding(nn.Module):
    """The rows of ``lut_to_dense(indices, lut)`` for the ids, times their rows' scales."""

    def __init__(self, table: np.ndarray, palettizer: LUTPalettizer, dtype: torch.dtype) -> None:
        super().__init__()
        index, lut, scale = palettizer.tables(table)  # table (vocab, hidden): groups of rows
        self.register_buffer("indices", torch.from_numpy(np.ascontiguousarray(index)))
        self.register_buffer("lut", torch.from_numpy(lut.astype(np.float32)).reshape(lut.shape[0], 1, lut.shape[1], 1).to(dtype))
        self.register_buffer("scale", torch.from_numpy(scale.astype(np.float32)).reshape(-1, 1).to(dtype))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        table = _lut_to_dense(self.indices, self.lut)
        return nn.functional.embedding(ids, table) * nn.functional.embedding(ids, self.scale)


def palettize_module(model: nn.Module, bits: int, group_size: int) -> int:
    """Replace the large :class:`Linear` and ``nn.Embedding`` weights of ``model`` by palettized
    ones, in place; returns how many. Equal weights (a tied embedding and LM head) share one k-means."""
    register_lut_op()
    palettizer = LUTPalettizer(bits, group_size, per_channel_scale=True)
    swaps = []
    for name, child in model.named_modules():
        if isinstance(child, Linear) and child.weight_t.numel() >= WEIGHT_THRESHOLD:
            weight = child.weight_t.detach().float().numpy().T
            swaps.append((name, PalettizedLinear(weight, palettizer, child.weight_t.dtype, getattr(child, "bias", None))))
        elif isinstance(child, nn.Embedding) and child.weight.numel() >= WEIGHT_THRESHOLD:
            swaps.append((name, PalettizedEmbedding(child.weight.detach().float().numpy(), palettizer, child.weight.dtype)))
    for name, replacement in swaps:
        parent, _, attr = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, attr, replacement)
    return len(swaps)
