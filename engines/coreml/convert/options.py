"""Conversion options and their checks."""

from __future__ import annotations

import re
from dataclasses import dataclass

from anechat.engines.errors import InvalidParameter

from anechat.engines.modeling.spec import ModelSpec

#: LUT sizes the converter writes: the ones ANEMLL uses, of the sizes a folder may hold
#: (:data:`anechat.engines.coreml.anemll.LUT_BITS`)
CONVERTER_LUT_BITS = (4, 6, 8)
#: what ``anechat convert --to coreml`` writes when no LUT flag is given: the FFN at 6 bits
#: (one table per row, the last layer at 8), the LM head and the embeddings at 8. SmolLM2-135M,
#: 128 positions: converted and run (bench/coreml_fidelity.py) top-1 0.977, perplexity 68.26
#: (fp32 68.56), 51% of the fp16 size; simulated (bench/coreml_recipes.py) KL to fp32 0.0040.
#: Smaller recipes cost more than they save: a 6-bit per-row head adds KL 0.0016 (8-bit
#: 0.0002), 6-bit embeddings 0.0005-0.0011 (8-bit 0.0001), 4-bit embeddings 0.045. The best
#: mix of table sizes and groups near 45% (a knapsack over each projection type's measured KL:
#: FFN at 6 in tables per 4 rows, down/k/v and the last layer at 8, head 8, embeddings 6)
#: simulates at KL 0.0053, top-1 0.961, 44% of the weights' fp16 bytes (~45.5% of the folder)
RECOMMENDED = {"lut_ffn": 6, "lut_lmhead": 8, "lut_embeddings": 8}
#: output channels per LUT when no group size is given and one table per row would cost too
#: much (8 bits: a 256-entry table per 576-value row almost doubles it); groups of 16 keep an
#: 8-bit part close, four-channel groups lift the FFN (SmolLM2-135M at 6 bits: top-1 0.906 ->
#: 0.938 alone, for ~6% more bytes)
DEFAULT_GROUPS = {"ffn": 4, "embeddings": 16, "lm_head": 16}
#: one table per output channel (row) whenever it costs at most this share of the row's
#: indices: below 8 bits for rows of the hidden size or longer. Measured on SmolLM2-135M
#: (bench/coreml_recipes.py, 128 positions): the FFN at 6 bits goes from KL to fp32 0.0092
#: (groups of 4) to 0.0061 and top-1 0.891 -> 0.961 (at 4 bits, per row: KL 0.153); an LM head
#: at 6 bits 0.898 -> 0.930 (KL 0.0089 -> 0.0027); each for ~25-30% more bytes on the part
ROW_TABLE_SHARE = 1 / 3
#: The FFN's most sensitive weights, measured by quantizing one projection type (or one layer)
#: at a time on SmolLM2-135M (KL to fp32 on 128 positions, bench/coreml_recipes.py). At 4 bits:
#: the down projections 0.054, up 0.032, gate 0.023, v 0.013, o 0.011, k 0.006, q 0.005; the
#: last layer 0.023, any other layer 0.003-0.009 (at 6 bits the same order: last layer 0.0016,
#: others 0.0002-0.0004). Mixed recipes give these more bits:
#: the last decoder layer at this many bits whenever the FFN is palettized below it (~1% of the
#: FFN's weights; FFN at 6 bits: KL 0.0061 -> 0.0055, top-1 0.961 -> 0.977)
LAST_LAYER_BITS = 8
#: the "down" role at this many bits when the FFN is palettized below it: the MLP's down
#: projections (a third of the MLP) and the attention's k and v projections (3% of the FFN's
#: weights, yet at 4 bits they add KL 0.018 of the 4-bit FFN's ~0.13). SmolLM2-135M, FFN at
#: 4 bits, the last layer at 8, head at 6 (simulated, 4,096-token calibration): down at 6:
#: KL 0.075, top-1 0.836, 47.0% of fp16; down, k and v at 6: KL 0.054, top-1 0.867, 47.8%
DOWN_PROJECTION_BITS = 6
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
    #: bits of the FFN's down projections and attention k/v projections; None:
    #: :data:`DOWN_PROJECTION_BITS` when ``lut_ffn`` is below it
    lut_ffn_down: int | None = None
    #: bits of the FFN's last decoder layer; None: :data:`LAST_LAYER_BITS` when ``lut_ffn`` is below it
    lut_ffn_last: int | None = None
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
        for name in ("lut_ffn", "lut_lmhead", "lut_embeddings", "lut_ffn_down", "lut_ffn_last"):
            value = getattr(self, name)
            if value is not None and value not in CONVERTER_LUT_BITS:
                raise InvalidParameter(f"{name} must be one of {', '.join(map(str, CONVERTER_LUT_BITS))} or none, got {value!r}")
        for name in ("lut_ffn_down", "lut_ffn_last"):
            if getattr(self, name) is not None and self.lut_ffn is None:
                raise InvalidParameter(f"{name} needs a LUT for the FFN (lut_ffn)")
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
        if bits is not None and (2 << bits) <= ROW_TABLE_SHARE * columns * bits / 8:
            return 1
        return DEFAULT_GROUPS[part]

    def ffn_bits(self) -> dict[str, int]:
        """Bits of the FFN's weights by role: "rest", "down" (down, k and v projections outside
        the last layer) and "last" (the last layer's); empty when the FFN keeps fp16."""
        if self.lut_ffn is None:
            return {}
        down = self.lut_ffn_down if self.lut_ffn_down is not None else max(self.lut_ffn, DOWN_PROJECTION_BITS)
        last = self.lut_ffn_last if self.lut_ffn_last is not None else max(self.lut_ffn, LAST_LAYER_BITS)
        return {"rest": self.lut_ffn, "down": down, "last": last}

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
