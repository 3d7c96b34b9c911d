"""Grouped-query attention over a KV cache and its masks, the one implementation both converters trace."""

from __future__ import annotations

import torch


def fold_mask(mask: torch.Tensor, group: int) -> torch.Tensor:
    """The causal mask (1, 1, S, ctx) repeated for the query heads of a group: (1, 1, group*S, ctx)."""
    return mask.repeat(1, 1, group, 1) if group > 1 else mask


def grouped_attention(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, folded_mask: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """``softmax(q·kᵀ + mask)·v`` with the query heads of each KV group folded into the
    sequence axis, so the cache is never repeated per query head.

    ``q`` (1, heads, S, hd), already scaled; ``keys`` / ``values`` (1, kv_heads, ctx, hd);
    ``folded_mask`` from :func:`fold_mask`. Returns (1, heads, S, hd).
    """
    _, heads, seq, head_dim = q.shape
    folded = q.reshape(1, kv_heads, (heads // kv_heads) * seq, head_dim)
    probs = torch.softmax(torch.matmul(folded, keys.transpose(2, 3)) + folded_mask, dim=-1)
    return torch.matmul(probs, values).reshape(1, heads, seq, head_dim)


def sliding_mask(causal: torch.Tensor, positions: torch.Tensor, key_index: torch.Tensor, window: int, masked: float) -> torch.Tensor:
    """The causal mask (1, 1, S, ctx) of a sliding-window layer: a query at position ``p`` also
    stops seeing the keys at ``p - window`` and before (it sees ``window`` positions, itself
    included). The KV cache still holds the whole context; only the mask slides."""
    far = key_index.reshape(1, -1) <= (positions.reshape(-1, 1) - window)  # (S, ctx)
    return torch.where(far.reshape(causal.shape), masked, causal)
