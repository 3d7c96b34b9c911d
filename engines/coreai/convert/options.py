"""What ``anechat convert --to coreai`` may be asked for, and the checks of it."""

from __future__ import annotations

from dataclasses import dataclass

from anechat.engines.errors import InvalidParameter

DTYPES = ("fp32", "bf16", "fp16")
#: none, palettization (k-means LUT of 2**bits entries) or linear weight quantization
COMPRESSIONS = ("none", "lut8", "lut6", "lut4", "int8", "int4")


@dataclass(frozen=True)
class CoreAIConvertOptions:
    context_length: int = 512
    batch_size: int = 64
    dtype: str = "fp32"  # of the weights; fp32 is the fast one on the Linux runtime (bf16 ~3.5x slower: upcast per call; fp16 ~70x)
    compress: str = "none"
    group_size: int = 32  # LUT: channels per table; int4/int8: block size along the input axis

    def check(self) -> "CoreAIConvertOptions":
        if not isinstance(self.context_length, int) or self.context_length < 2:
            raise InvalidParameter(f"--context {self.context_length!r} is invalid: use an integer >= 2")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= self.context_length:
            raise InvalidParameter(
                f"--batch {self.batch_size!r} is invalid: use an integer between 1 and the context length ({self.context_length})"
            )
        if self.dtype not in DTYPES:
            raise InvalidParameter(f"--dtype {self.dtype!r} is invalid: use one of {', '.join(DTYPES)}")
        if self.compress not in COMPRESSIONS:
            raise InvalidParameter(f"--compress {self.compress!r} is invalid: use one of {', '.join(COMPRESSIONS)}")
        if not isinstance(self.group_size, int) or self.group_size < 1:
            raise InvalidParameter(f"--group-size {self.group_size!r} is invalid: use a positive integer")
        return self

    @property
    def state_dtype(self) -> str:
        """The KV cache's dtype: the compute dtype of module.Precision for these weights (bf16 -> fp32)."""
        from anechat.engines.coreai.convert.module import Precision

        compute = Precision.of(self.torch_dtype).compute
        return next(name for name, dtype in _torch_dtypes().items() if dtype == compute)

    @property
    def torch_dtype(self):
        return _torch_dtypes()[self.dtype]


def _torch_dtypes() -> dict:
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
