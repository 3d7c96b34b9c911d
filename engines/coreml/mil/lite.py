"""A lowered function as plain data (JSON + arrays) and back, without coremltools.

:func:`to_record` keeps what the kernel builders and the linker read of each op left to
run — its type, name, input and output vars (shape, rank, dtype, state or not) — and
the load-time constants those ops take. :func:`from_record` rebuilds the ops as
:class:`LiteOp` / :class:`LiteVar` stand-ins and the kernels from them. Nothing is
unpickled: a record is JSON and ``.npy`` arrays, so a cache file from an untrusted folder
can at worst describe a wrong program, never run code.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Callable

import numpy as np

from anechat.engines.coreml.mil.compiler import Lowered, build_kernel, flat_input_vars_for
from anechat.engines.coreml.mil.fallback import flat_input_vars
from anechat.engines.coreml.mil.package_reader import FunctionInfo, TensorInfo

#: arrays at least this large go to their own .npy file (memory-mapped on load)
NPY_MIN_SIZE = 256


class Uncacheable(Exception):
    """The function holds something a record cannot describe (the reason is the message)."""


class LiteVar:
    __slots__ = ("name", "shape", "rank", "dtype", "is_state", "val")

    def __init__(self, name: str, shape, rank: int, dtype: str, is_state: bool, val: Any = None):
        self.name, self.shape, self.rank, self.dtype, self.is_state, self.val = name, shape, rank, dtype, is_state, val


class LiteOp:
    __slots__ = ("op_type", "name", "inputs", "outputs", "blocks")

    def __init__(self, op_type: str, name: str, inputs: dict, outputs: list):
        self.op_type, self.name, self.inputs, self.outputs, self.blocks = op_type, name, inputs, outputs, []


def _var_record(var) -> list:
    from coremltools.converters.mil.mil import types

    is_state = types.is_state(var.sym_type)
    try:
        dtype = types.builtin_to_string(var.dtype)
    except Exception:  # state and list types have no scalar dtype
        dtype = ""
    shape = getattr(var, "shape", None)
    shape = None if shape is None else [int(d) if isinstance(d, (int, np.integer)) else None for d in shape]
    return [shape, int(getattr(var, "rank", 0) or 0), dtype, bool(is_state)]


def _encode(value: Any, save_array: Callable[[np.ndarray], int]) -> dict:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise Uncacheable(f"a constant of dtype {value.dtype}")
        if value.size >= NPY_MIN_SIZE:
            return {"npy": save_array(value)}
        return {"a": value.reshape(-1).tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biuf":
            raise Uncacheable(f"a constant of dtype {value.dtype}")
        return {"s": value.item(), "dtype": value.dtype.str}
    if isinstance(value, str):
        return {"str": value}
    if isinstance(value, (bool, int, float)):
        return {"py": value}
    raise Uncacheable(f"a constant of type {type(value).__name__}")


def _decode(entry: dict, arrays: list[np.ndarray]) -> Any:
    if "npy" in entry:
        return arrays[entry["npy"]]
    if "a" in entry:
        return np.asarray(entry["a"], dtype=np.dtype(entry["dtype"])).reshape(entry["shape"])
    if "s" in entry:
        return np.dtype(entry["dtype"]).type(entry["s"])
    if "str" in entry:
        return str(entry["str"])
    return entry["py"]


def to_record(lowered: Lowered, info: FunctionInfo, save_array: Callable[[np.ndarray], int]) -> dict:
    """The JSON-able description of ``lowered``; ``save_array`` stores an array, returns its index."""
    fallback = lowered.fallback_ops()
    if fallback:
        raise Uncacheable(f"ops run by coremltools: {', '.join(fallback)}")
    ops, variables, needed = [], {}, set(lowered.output_names)
    for s in lowered.steps:
        op = s["op"]
        inputs = {}
        for arg, v in op.inputs.items():
            if v is None:
                continue
            inputs[arg] = [x.name for x in v] if isinstance(v, (tuple, list)) else v.name
        for v in flat_input_vars(op) + list(op.outputs):
            if v.name not in variables:
                variables[v.name] = _var_record(v)
        needed.update(v.name for v in flat_input_vars(op))
        ops.append({"type": op.op_type, "name": op.name, "inputs": inputs, "outputs": [o.name for o in op.outputs]})
    consts = {n: _encode(lowered.consts[n], save_array) for n in sorted(needed) if n in lowered.consts}
    return {
        "name": lowered.name,
        "source": lowered.source,
        "info": asdict(info),
        "inputs": lowered.inputs,
        "states": lowered.states,
        "outputs": lowered.output_names,
        "op_counts": lowered.op_counts,
        "ops": ops,
        "vars": variables,
        "consts": consts,
    }


def info_from_record(record: dict) -> FunctionInfo:
    def tensors(d: dict) -> dict[str, TensorInfo]:
        return {
            k: TensorInfo(t["name"], tuple(t["shape"]), t["dtype"], tuple(tuple(s) for s in t["shapes"]))
            for k, t in d.items()
        }

    i = record["info"]
    return FunctionInfo(i["name"], tensors(i["inputs"]), tensors(i["outputs"]), tensors(i["states"]))


def from_record(record: dict, arrays: list[np.ndarray]) -> Lowered:
    """The lowered function again, its kernels built from :class:`LiteOp` stand-ins."""
    consts = {n: _decode(e, arrays) for n, e in record["consts"].items()}
    variables = {
        n: LiteVar(n, None if shape is None else tuple(shape), rank, dtype, is_state, consts.get(n))
        for n, (shape, rank, dtype, is_state) in record["vars"].items()
    }
    source = record["source"]
    steps = []
    for o in record["ops"]:
        inputs = {a: tuple(variables[x] for x in v) if isinstance(v, list) else variables[v] for a, v in o["inputs"].items()}
        op = LiteOp(o["type"], o["name"], inputs, [variables[n] for n in o["outputs"]])
        kern = build_kernel(op, consts, source, allow_fallback=False)
        steps.append({"op": op, "kernel": kern, "ins": [v.name for v in flat_input_vars_for(op, kern.args)], "outs": o["outputs"]})
    return Lowered(record["name"], source, consts, steps, dict(record["inputs"]), dict(record["states"]), list(record["outputs"]), dict(record["op_counts"]))
