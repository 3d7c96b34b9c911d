"""Runs any op through coremltools' own ``value_inference()`` (its numpy semantics).

Used for the ops that have no hand-written kernel. At run time the op's input
vars are given the current values for the duration of the call.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from anechat.engines.coreml.mil.kernels import Kernel, as_float


class Box:
    """Stands in for a coremltools builtin value: all ``Var.val`` reads is ``.val``."""

    __slots__ = ("val",)

    def __init__(self, val: Any):
        self.val = val


def flat_input_vars(op) -> list:
    out = []
    for v in op.inputs.values():
        if isinstance(v, (tuple, list)):
            out.extend(v)
        elif v is not None:
            out.append(v)
    return out


def has_value_inference(op) -> bool:
    from coremltools.converters.mil.mil.operation import Operation

    return type(op).value_inference is not Operation.value_inference


def call_with_values(op, method: str, values: list) -> Any:
    """Call ``op.<method>()`` with the op's input vars temporarily holding ``values``."""
    vars_ = flat_input_vars(op)
    saved = [v._sym_val for v in vars_]
    try:
        for v, val in zip(vars_, values):
            v._sym_val = Box(val)
        return getattr(op, method)()
    finally:
        for v, s in zip(vars_, saved):
            v._sym_val = s


def fallback_kernel(op) -> Kernel:
    names = tuple(k for k, v in op.inputs.items() if v is not None)
    multi = len(op.outputs) > 1

    def run(*values):
        result = call_with_values(op, "value_inference", list(values))
        if multi:
            return tuple(as_float(np.asarray(r)) for r in result)
        return as_float(np.asarray(result))

    return Kernel(run, names, fallback=True)
