"""Weight compression of a converted program through coreai-opt.

``lutN``: k-means palettization, a table of 2**N values per group of ``group_size`` output
channels; ``int8`` / ``int4``: symmetric linear quantization, per channel (int8) or per
block of ``group_size`` inputs (int4). Only weights coreai-opt knows how to compress
(matmul / gather constants over its size threshold) change. On the Linux runtime the
compressed weights are expanded on every call, so they save disk and memory, not time.
"""

from __future__ import annotations

#: weights with fewer elements than this stay as they are (norms, tiny tables)
WEIGHT_THRESHOLD = 1024


def compress_program(program, compress: str, group_size: int):
    """The program with its weights compressed as ``compress`` says ("none": unchanged)."""
    if compress == "none":
        return program
    from coreai_opt.coreai_utils import CompressionGranularity, DType, palettize_weights, quantize_weights

    if compress.startswith("lut"):
        return palettize_weights(
            program,
            None,
            n_bits=int(compress[3:]),
            granularity=CompressionGranularity.PER_GROUPED_CHANNEL,
            group_size=group_size,
            weight_num_threshold=WEIGHT_THRESHOLD,
            num_kmeans_workers=1,  # forked k-means pools can hang on Linux
        )
    bits = int(compress[3:])
    return quantize_weights(
        program,
        DType.INT8 if bits == 8 else DType.INT4,
        granularity=CompressionGranularity.PER_CHANNEL if bits == 8 else CompressionGranularity.PER_BLOCK,
        block_size=group_size,
        weight_num_threshold=WEIGHT_THRESHOLD,
    )
