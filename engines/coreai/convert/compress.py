"""Linear weight quantization of a converted program through coreai-opt.

``int8`` / ``int4``: symmetric linear quantization, per channel (int8) or per block of
``group_size`` inputs (int4). Only weights coreai-opt knows how to compress (matmul /
gather constants over its size threshold) change. LUT palettization is done earlier, on
the torch module (:mod:`.palettized`). On the Linux runtime the compressed weights are
expanded on every call, so they save disk and memory, not time.
"""

from __future__ import annotations

#: weights with fewer elements than this stay as they are (norms, tiny tables)
WEIGHT_THRESHOLD = 1024


def compress_program(program, compress: str, group_size: int):
    """The program with its weights quantized as ``compress`` ("int8" / "int4") says."""
    from coreai_opt.coreai_utils import CompressionGranularity, DType, quantize_weights

    bits = int(compress[3:])
    return quantize_weights(
        program,
        DType.INT8 if bits == 8 else DType.INT4,
        granularity=CompressionGranularity.PER_CHANNEL if bits == 8 else CompressionGranularity.PER_BLOCK,
        block_size=group_size,
        weight_num_threshold=WEIGHT_THRESHOLD,
    )
