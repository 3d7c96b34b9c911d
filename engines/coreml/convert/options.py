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
#: embeddings: about 44% of the fp16 size for SmolLM2-135M; the LM head is the most
#: sensitive part (alone at 6 bits it costs ~10% top-1, at 8 bits ~2%; bench/coreml_recipes.py)
RECOMMENDED = {"lut_ffn": 6, "lut_lmhead": 8, "lut_embeddings": 8}
#: output channels per LUT when no group size is given, by part: measured on SmolLM2-135M,
#: four-channel groups lift the FFN at 6 bits (top-1 0.906 -> 0.938 alone) for ~6% more
#: bytes, and one table per output (vocabulary row) lifts an LM head below 8 bits
#: (0.898 -> 0.930, KL to fp32 0.0089 -> 0.0027) for ~30% more on the head; at 8 bits a
#: per-row table would almost double the head, and groups of 16 already keep it close
DEFAULT_GROUPS = {"ffn": 4, "embeddings": 16, "lm_head": 16}
#: a per-row table is used (LM head below 8 bits) only when it costs at most this share of the row's indices
ROW_TABLE_SHARE = 1 / 3
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
    #: output channels per LUT, every part; None: :data:`DEFAULT_GROUPS` (see :meth:`group`)
    group_size: int | None = None
    #: LUTs with one fp16 scale per output channel (iOS 18 ops)
    per_channel_scale: bool = True
    #: weigh k-means by input-channel importance measured on a calibration text
    calibrate: bool = True
    #: with calibration: round each weight onto its table with error feedback (GPTQ-style,
    #: :mod:`.feedback`) instead of to the nearest entry: less output error on the calibration
    #: inputs, a slower conversion; its share of the top-1 gain is not yet measured alone
    error_feedback: bool = True
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
        if self.group_size is not None and (not isinstance(self.group_size, int) or self.group_size < 1):
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

    def group(self, part: str, bits: int | None, columns: int) -> int:
        """Output channels per LUT of ``part`` ("ffn", "embeddings", "lm_head") at ``bits``,
        for rows of ``columns`` values (the hidden size)."""
        if self.group_size is not None:
            return self.group_size
        if part == "lm_head" and bits is not None and bits < 8 and (2 << bits) <= ROW_TABLE_SHARE * columns * bits / 8:
            return 1
        return DEFAULT_GROUPS[part]

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
