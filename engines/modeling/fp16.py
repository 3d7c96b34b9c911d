"""Choosing the residual scale that keeps a model's residual stream inside fp16.

The Neural Engine computes in fp16 (largest finite value 65504). Gemma's residual stream
grows far beyond what llama-family models carry; ANEMLL converts it with the stream scaled
down by a constant, and so does this converter (:attr:`ModelSpec.residual_scale`, applied by
:mod:`anechat.engines.modeling.decoder`: the same function, computed smaller). The scale is
a power of two, so scaling itself rounds nothing; it is the largest one that brings the
stream's float32 peak on a calibration text under :data:`TARGET` (headroom for texts that
push it further).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from anechat.engines.modeling.reference import layer_outputs
from anechat.engines.modeling.spec import ModelSpec

#: the residual stream's calibrated peak is brought under this (fp16's limit / 16)
TARGET = 4096.0
#: never scale below 2**-12 (small entries would fall into fp16's subnormals)
MIN_SCALE = 2.0**-12


def residual_peak(spec: ModelSpec, weights: dict, ids: list[int]) -> float:
    """The largest |value| the residual stream takes over ``ids`` (embeddings and every layer's
    output), in float32, at ``spec``'s residual scale."""
    return max(float(x.abs().max()) for x in layer_outputs(spec, weights, ids))


def scale_for(peak: float) -> float:
    """The largest power of two ``s <= 1`` with ``peak * s <= TARGET`` (at least :data:`MIN_SCALE`)."""
    if not np.isfinite(peak) or peak <= TARGET:
        return 1.0 if np.isfinite(peak) else MIN_SCALE
    return max(2.0 ** -int(np.ceil(np.log2(peak / TARGET))), MIN_SCALE)


def fp16_ready(spec: ModelSpec, weights: dict, ids: list[int] | None) -> ModelSpec:
    """``spec`` with the residual scale its stream needs on ``ids`` to stay inside fp16 (itself
    when no text is given or no scaling is needed)."""
    if not ids:
        return spec
    return replace(spec, residual_scale=scale_for(residual_peak(spec, weights, ids)))
