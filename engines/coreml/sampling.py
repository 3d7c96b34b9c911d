"""Token sampling in numpy: repetition penalty, temperature, top-k, top-p, min-p, seed.

Greedy (temperature 0) is ``argmax`` after the repetition penalty, so it picks the
same token as any other engine given the same logits (first index on ties).
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

import numpy as np

from anechat.engines.base import SamplingParams


class Sampler:
    """Samples one token from a logits vector; remembers recent tokens for the penalty."""

    def __init__(self, params: SamplingParams, context_ids: Sequence[int] = ()) -> None:
        self.params = params
        self.rng = np.random.default_rng(params.seed)
        self.recent: deque[int] = deque(list(context_ids)[-params.repetition_context :], maxlen=params.repetition_context)

    def accept(self, token: int) -> None:
        """Record a token that entered the context (for the repetition penalty)."""
        self.recent.append(int(token))

    def __call__(self, logits: np.ndarray) -> int:
        p = self.params
        logits = np.asarray(logits, dtype=np.float32).reshape(-1)
        if p.repetition_penalty != 1.0 and self.recent:
            logits = apply_repetition_penalty(logits, self.recent, p.repetition_penalty)
        if p.temperature == 0:
            return int(np.argmax(logits))
        probs = filtered_probs(logits / np.float32(p.temperature), p.top_k, p.top_p, p.min_p)
        return int(self.rng.choice(probs.shape[0], p=probs))


def apply_repetition_penalty(logits: np.ndarray, tokens, penalty: float) -> np.ndarray:
    """Divide positive logits of seen tokens by ``penalty``, multiply negative ones (CTRL / HF rule)."""
    idx = np.fromiter(set(tokens), dtype=np.int64)
    idx = idx[(idx >= 0) & (idx < logits.shape[0])]
    out = logits.copy()
    seen = out[idx]
    out[idx] = np.where(seen > 0, seen / penalty, seen * penalty)
    return out


def filtered_probs(scaled: np.ndarray, top_k: int = 0, top_p: float = 1.0, min_p: float = 0.0) -> np.ndarray:
    """Softmax of ``scaled`` logits after top-k, then top-p (nucleus), then min-p filtering."""
    x = scaled.astype(np.float64)
    x -= np.max(x)
    probs = np.exp(x)
    probs /= probs.sum()
    keep = np.ones(probs.shape[0], dtype=bool)
    if top_k and top_k < probs.shape[0]:
        kth = np.partition(probs, -top_k)[-top_k]
        keep &= probs >= kth
    if top_p < 1.0:
        order = np.argsort(-probs, kind="stable")
        sorted_p = probs[order]
        # keep the smallest prefix whose mass reaches top_p (always at least the top token)
        cut = int(np.searchsorted(np.cumsum(sorted_p), top_p)) + 1
        nucleus = np.zeros_like(keep)
        nucleus[order[:cut]] = True
        keep &= nucleus
    if min_p > 0.0:
        keep &= probs >= min_p * probs.max()
    probs = np.where(keep, probs, 0.0)
    total = probs.sum()
    if not np.isfinite(total) or total <= 0:  # nothing left (cannot happen with the rules above): take the top token
        probs = np.zeros_like(probs)
        probs[int(np.argmax(scaled))] = 1.0
        return probs
    return probs / total
