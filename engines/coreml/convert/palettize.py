"""LUT palettization of a converted part (k-means, per grouped channel)."""

from __future__ import annotations

from anechat.engines.coreml.convert.kmeans import KMeansLUT
from anechat.engines.coreml.convert.parts import quiet

#: weights with fewer elements stay in fp16 (coremltools' default threshold, as ANEMLL leaves it)
WEIGHT_THRESHOLD = 2048


def palettize(mlmodel, nbits: int, group_size: int, op_type: str, lut_function: KMeansLUT | None = None):
    """Return ``mlmodel`` with the weights of its ``op_type`` ops ("conv" for the projections,
    "gather" for the embedding table) as ``nbits`` lookup tables, one per ``group_size`` output
    channels. Weights under 2048 elements, and every other constant (rotary tables, norm
    weights), stay fp16.

    ``lut_function`` (default: a fresh :class:`KMeansLUT`) computes each group's table; pass
    the same one to both functions of a chunk. ``lut_function="coremltools"`` uses
    coremltools' scikit-learn k-means instead (slow). One worker either way: forked worker
    pools can hang on Linux.
    """
    import coremltools.optimize.coreml as cto

    common = dict(
        granularity="per_grouped_channel",
        group_size=group_size,
        weight_threshold=WEIGHT_THRESHOLD,
        num_kmeans_workers=1,
    )
    if lut_function == "coremltools":
        op_config = cto.OpPalettizerConfig(mode="kmeans", nbits=nbits, **common)
    else:
        op_config = cto.OpPalettizerConfig(mode="custom", lut_function=lut_function or KMeansLUT(nbits), **common)
    config = cto.OptimizationConfig(op_type_configs={op_type: op_config})
    from anechat.engines.coreml.convert.lean import lean_pipeline

    with quiet(), lean_pipeline():
        return cto.palettize_weights(mlmodel, config)
