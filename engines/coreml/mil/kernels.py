"""The table of hand-written numpy kernels, keyed by MIL op type.

A kernel *builder* receives the MIL operation and a :class:`BuildContext` at load
time and returns a :class:`Kernel`: a plain callable plus the op inputs it takes
positionally at run time. Everything that is constant for the op (axes, slice
bounds, reshaped weights) is worked out once, in the builder, so the per-token
loop only calls the callable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

_MISSING = object()


@dataclass
class Kernel:
    fn: Callable[..., Any]
    args: tuple[str, ...]  # op input names, passed positionally (tuple inputs are spread)
    #: the result never shares memory with an input (so it cannot alias a state buffer)
    fresh: bool = True
    #: set by the state kernels: this op writes/reads the named state in place
    state_role: str = ""
    #: runs through coremltools' value inference (needs the MIL op; never cached)
    fallback: bool = False


class BuildContext:
    """What a builder may ask about an op's inputs while the function is compiled."""

    def __init__(self, op, consts: dict[str, Any]):
        self.op = op
        self._consts = consts

    def var(self, name: str):
        return self.op.inputs.get(name)

    def has(self, name: str) -> bool:
        return self.op.inputs.get(name) is not None

    def is_const(self, name: str) -> bool:
        v = self.op.inputs.get(name)
        if v is None:
            return False
        if isinstance(v, (tuple, list)):
            return all(x.name in self._consts for x in v)
        return v.name in self._consts

    def const(self, name: str, default: Any = _MISSING) -> Any:
        """The load-time value of input ``name`` (``default`` when absent)."""
        v = self.op.inputs.get(name)
        if v is None:
            if default is _MISSING:
                raise KeyError(f"{self.op.op_type} {self.op.name!r} has no input {name!r}")
            return default
        if isinstance(v, (tuple, list)):
            return [self._consts[x.name] for x in v]
        if v.name not in self._consts:
            raise NotConstant(name)
        return self._consts[v.name]

    def rank(self, name: str) -> int:
        return self.op.inputs[name].rank

    def out_dtype(self) -> str:
        dtype = self.op.outputs[0].dtype
        if isinstance(dtype, str):  # a LiteVar restored from the plan cache
            return dtype
        from coremltools.converters.mil.mil import types

        return types.builtin_to_string(dtype)


class NotConstant(Exception):
    """A builder needed a load-time value but the input is only known at run time."""


Builder = Callable[[Any, BuildContext], Kernel]
KERNELS: dict[str, Builder] = {}


def kernel(*op_types: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        for t in op_types:
            KERNELS[t] = builder
        return builder

    return register


def as_float(value: Any) -> Any:
    """fp16 (and fp64) arrays become fp32: the executor computes in fp32 on the CPU."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f" and value.dtype != np.float32:
        return value.astype(np.float32)
    if isinstance(value, (np.floating,)) and not isinstance(value, np.float32):
        return np.float32(value)
    return value


def const_bool_list(ctx: BuildContext, name: str, rank: int) -> list[bool]:
    v = ctx.const(name, None)
    if v is None:
        return [False] * rank
    return [bool(b) for b in np.asarray(v).reshape(-1)]
