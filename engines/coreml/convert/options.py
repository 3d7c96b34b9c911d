"""Conversion options and their checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from anechat.engines.errors import InvalidParameter

from anechat.engines.modeling.spec import ModelSpec

#: LUT sizes the converter writes: the ones ANEMLL uses, of the sizes a folder may hold
#: (:data:`anechat.engines.coreml.anemll.LUT_BITS`)
CONVERTER_LUT_BITS = (4, 6, 8)
#: what ``anechat convert --to coreml`` writes when no LUT flag is given: 6-bit tables with
#: per-channel scales and calibrated k-means for the FFN, 8-bit for the LM head and the
#: embeddings: about 43% of the fp16 size for SmolLM2-135M, and the 8-bit head is what
#: lifts top-1 agreement most (0.867 -> 0.930 simulated, bench/coreml_recipes.py)
RECOMMENDED = {"lut_ffn": 6, "lut_lmhead": 8, "lut_embeddings": 8}
#: no tensor dimension on the ANE may exceed this
MAX_DIMENSION = 16384


@dataclass(frozen=True)
class CoreMLConvertOptions:
    context_length: int = 512
    batch_size: int = 64
    num_chunks: int = 1
    lut_ffn: int | None = None
    lut_lmhead: int | None = None
    lut_embeddings: int | None = None
    group_size: int = 16
    #: LUTs with one fp16 scale per output channel (iOS 18 ops)
    per_channel_scale: bool = True
    #: weigh k-means by input-channel importance measured on a calibration text
    calibrate: bool = True
    prefix: str = "llama"
    #: LM head outputs; None picks 8, or 16 (or more) when a part would exceed 16384
    split_lm_head: int | None = None

    def check(self, spec: ModelSpec) -> None:
        """Raise InvalidParameter naming the first bad option."""
        if not isinstance(self.context_length, int) or self.context_length < 2:
            raise InvalidParameter(f"context_length must be an integer >= 2, got {self.context_length!r}")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= self.context_length:
            raise InvalidParameter(
                f"batch_size must be between 1 and the context length ({self.context_length}), got {self.batch_size!r}"
            )
        if not isinstance(self.num_chunks, int) or not 1 <= self.num_chunks <= spec.num_layers:
            raise InvalidParameter(
                f"num_chunks must be between 1 and the number of layers ({spec.num_layers}), got {self.num_chunks!r}"
            )
        for name in ("lut_ffn", "lut_lmhead", "lut_embeddings"):
            value = getattr(self, name)
            if value is not None and value not in CONVERTER_LUT_BITS:
                raise InvalidParameter(f"{name} must be one of {', '.join(map(str, CONVERTER_LUT_BITS))} or none, got {value!r}")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise InvalidParameter(f"group_size must be a positive integer, got {self.group_size!r}")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", str(self.prefix)):
            raise InvalidParameter(f"prefix must be letters and digits, got {self.prefix!r}")
        if self.split_lm_head is not None:
            sizes = lm_head_split(spec.vocab_size, self.split_lm_head) if self.split_lm_head >= 1 else [0]
            if self.split_lm_head < 1 or max(sizes) > MAX_DIMENSION:
                raise InvalidParameter(
                    f"split_lm_head {self.split_lm_head!r} leaves a part over {MAX_DIMENSION} outputs "
                    f"(vocabulary {spec.vocab_size})"
                )

    def lm_head_sizes(self, vocab: int) -> list[int]:
        if self.split_lm_head is not None:
            return lm_head_split(vocab, self.split_lm_head)
        parts = 8
        while -(-vocab // parts) > MAX_DIMENSION:
            parts *= 2
        return lm_head_split(vocab, parts)


def lm_head_split(vocab: int, parts: int, multiple: int = 16) -> list[int]:
    """Output sizes of the split LM head: equal parts, rounded up to a multiple of ``multiple``
    when the vocabulary allows (so grouped-channel LUTs fit); the last part takes what is left."""
    even = -(-vocab // parts)
    rounded = -(-even // multiple) * multiple
    for size in (rounded, even):
        last = vocab - size * (parts - 1)
        if 0 < last <= size:
            return [size] * (parts - 1) + [last]
    raise ValueError(f"cannot split a vocabulary of {vocab} into {parts} parts")
