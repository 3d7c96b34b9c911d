"""Rotary position tables: plain rope, linear scaling and Llama 3's frequency-dependent scaling.

Computed in float64 and handed out as float32; the converters' modules store them as
constants and gather the rows of the current positions. Gemma 3's sliding-window layers
have their own base (``local_rope_theta``) and no scaling.
"""

from __future__ import annotations

import math

import numpy as np

from anechat.engines.modeling.spec import SLIDING, ModelSpec


def inverse_frequencies(spec: ModelSpec, kind: str | None = None) -> np.ndarray:
    """``inv_freq`` (head_dim / 2,) after the model's rope_scaling, as transformers defines it,
    for the layers of ``kind`` (the sliding layers' own base when it is SLIDING)."""
    dim = spec.head_dim
    if kind == SLIDING:
        return (1.0 / (spec.local_rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))).astype(np.float32)
    inv_freq = 1.0 / (spec.rope_theta ** (np.arange(0, dim, 2, dtype=np.float64) / dim))
    scaling = spec.rope_scaling or {}
    scaling_type = spec.rope_type
    if scaling_type == "linear":
        return (inv_freq / float(scaling["factor"])).astype(np.float32)
    if scaling_type == "llama3":
        return llama3_scaled(
            inv_freq,
            factor=float(scaling["factor"]),
            low_freq_factor=float(scaling.get("low_freq_factor", 1.0)),
            high_freq_factor=float(scaling.get("high_freq_factor", 4.0)),
            original_max_position_embeddings=int(scaling.get("original_max_position_embeddings", 8192)),
        ).astype(np.float32)
    return inv_freq.astype(np.float32)


def llama3_scaled(
    inv_freq: np.ndarray,
    *,
    factor: float,
    low_freq_factor: float,
    high_freq_factor: float,
    original_max_position_embeddings: int,
) -> np.ndarray:
    """Llama 3.x scaling: long wavelengths divided by ``factor``, short ones kept, a smooth blend between."""
    old_len = float(original_max_position_embeddings)
    low_freq_wavelen = old_len / low_freq_factor
    high_freq_wavelen = old_len / high_freq_factor
    wavelen = 2 * math.pi / inv_freq
    scaled = np.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
    blended = (1 - smooth) * scaled / factor + smooth * scaled
    medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return np.where(medium, blended, scaled)


def rope_tables(spec: ModelSpec, length: int, kind: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin tables (length, head_dim) for positions 0..length-1 (halves repeated, HF
    layout), for the layers of ``kind``."""
    inv_freq = inverse_frequencies(spec, kind).astype(np.float64)
    angles = np.outer(np.arange(length, dtype=np.float64), inv_freq)
    emb = np.concatenate([angles, angles], axis=-1)
    return np.cos(emb).astype(np.float32), np.sin(emb).astype(np.float32)
