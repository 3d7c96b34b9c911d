"""Turns one MIL function into a flat plan: constants, then (kernel, input slots, output slot) steps.

At load time every ``const`` becomes an fp32 array (fp16 cast once), every
``constexpr_*`` (LUT palettization, quantization, sparsity) is materialized once
with coremltools' ``materialized_val_inference()``, and every op whose inputs are
all known is folded. What is left is the per-token work.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from anechat.engines.errors import ModelFormatError
from anechat.engines.coreml.mil import ops_math, ops_nn, ops_state, ops_tensor  # noqa: F401  (register kernels)
from anechat.engines.coreml.mil.fallback import call_with_values, fallback_kernel, flat_input_vars, has_value_inference
from anechat.engines.coreml.mil.in_place import plan_in_place, state_aliases
from anechat.engines.coreml.mil.kernels import KERNELS, BuildContext, Kernel, NotConstant, as_float

_DEDUPE_MIN_SIZE = 4096
_NEVER_FOLD = {"read_state", "coreml_update_state"}


class UnsupportedOp(ModelFormatError):
    """The program holds an op the executor has no implementation for."""


@dataclass
class Plan:
    """A compiled function, ready for :func:`anechat.engines.coreml.mil.runner.run_plan`."""

    name: str
    source: str
    steps: list[tuple[Callable[..., Any], tuple[int, ...], Any]]
    template: list[Any]  # the initial slot values: constants, None elsewhere
    inputs: dict[str, int]  # tensor inputs -> slot
    states: dict[str, int]  # state inputs -> slot (bound to a StateSlot at run time)
    outputs: list[tuple[str, int, bool]]  # (name, slot, copy: it may share a state's memory)
    op_counts: dict[str, int] = field(default_factory=dict)
    in_place_updates: int = 0
    #: every constant array the plan holds (weights included), each once
    arrays: list = field(default_factory=list)


class ConstCache:
    """Constants shared across the functions of one package (infer and prefill share weights)."""

    def __init__(self) -> None:
        self.by_key: dict[tuple, Any] = {}

    @staticmethod
    def key(value: Any) -> tuple | None:
        if not isinstance(value, np.ndarray) or value.size < _DEDUPE_MIN_SIZE:
            return None
        arr = np.ascontiguousarray(value)
        digest = hashlib.blake2b(memoryview(arr).cast("B"), digest_size=16).hexdigest()
        return (arr.dtype.str, arr.shape, digest)

    def get_or_make(self, key: tuple | None, make: Callable[[], Any]) -> Any:
        if key is None:
            return make()
        if key not in self.by_key:
            self.by_key[key] = make()
        return self.by_key[key]


def _raw_val(var) -> Any:
    sv = var._sym_val
    return None if sv is None else sv.val


@dataclass
class Lowered:
    """A function after load-time work: folded constants, and the ops left to run per token
    (each with the kernel built for it). :mod:`.plan_cache` stores and restores this."""

    name: str
    source: str
    consts: dict[str, Any]  # var name -> load-time value (fp32 arrays, scalars, strings)
    steps: list[dict]  # {"op", "kernel", "ins", "outs"}
    inputs: dict[str, str]  # function input name -> var name
    states: dict[str, str]
    output_names: list[str]
    op_counts: dict[str, int]

    def fallback_ops(self) -> list[str]:
        """Op types run through coremltools' value inference (they need the MIL program)."""
        return sorted({s["op"].op_type for s in self.steps if s["kernel"].fallback})


def compile_function(function, source: str, cache: ConstCache | None = None, name: str = "") -> Plan:
    """Compile a coremltools MIL ``Function`` (from :meth:`MILPackage.load_program`)."""
    return link(lower(function, source, cache, name))


def lower(function, source: str, cache: ConstCache | None = None, name: str = "") -> Lowered:
    """Materialize constants, fold what is known at load time, build a kernel per op left."""
    cache = cache or ConstCache()
    consts: dict[str, Any] = {}  # var name -> fp32-cast value used by kernels
    raw: dict[str, Any] = {}  # var name -> value as stored (for constexpr chains)
    keys: dict[str, Any] = {}  # var name -> dedupe key of the raw value
    steps: list[dict] = []
    op_counts: dict[str, int] = {}

    inputs, states = {}, {}
    for in_name, var in function.inputs.items():
        (states if _is_state(var) else inputs)[in_name] = var.name

    for op in function.operations:
        if op.blocks:
            raise UnsupportedOp(f"{source}: op {op.op_type!r} ({op.name}) has nested blocks (control flow), which the MIL executor does not run")
        t = op.op_type
        if t == "const":
            out = op.outputs[0]
            value = _raw_val(out)
            raw[out.name] = value
            k = cache.key(value)
            keys[out.name] = k
            consts[out.name] = cache.get_or_make(k, lambda v=value: as_float(v))
            continue
        if t.startswith("constexpr_"):
            _materialize(op, consts, raw, keys, cache, source)
            continue
        if t not in _NEVER_FOLD and all(o.val is not None for o in op.outputs) and _all_static(op):
            # coremltools already knows the value (e.g. the shape of a static tensor)
            for o in op.outputs:
                consts[o.name] = o.val if isinstance(o.val, str) else as_float(np.asarray(o.val))
            continue
        kern = build_kernel(op, consts, source)
        in_vars = flat_input_vars_for(op, kern.args)
        op_counts[t] = op_counts.get(t, 0) + 1
        if t not in _NEVER_FOLD and all(v.name in consts for v in in_vars):
            result = kern.fn(*[consts[v.name] for v in in_vars])
            results = result if len(op.outputs) > 1 else (result,)
            for o, r in zip(op.outputs, results):
                consts[o.name] = r
            op_counts[t] -= 1
            continue
        steps.append({"op": op, "kernel": kern, "ins": [v.name for v in in_vars], "outs": [o.name for o in op.outputs]})

    op_counts = {k: v for k, v in op_counts.items() if v}
    output_names = [v.name for v in function.outputs]
    _release_program_values(function)
    return Lowered(name or "main", source, consts, steps, inputs, states, output_names, op_counts)


def _fp16(fn: Callable) -> Callable:
    """``fn`` with every float result rounded to fp16 (and kept as fp32 arrays): what the
    Neural Engine holds between ops. Overflow becomes inf, as it would there."""

    def rounded(*args):
        result = fn(*args)
        if isinstance(result, tuple):
            return tuple(_round16(r) for r in result)
        return _round16(result)

    rounded.__qualname__ = getattr(fn, "__qualname__", "kernel") + "[fp16]"
    return rounded


def _round16(value):
    if isinstance(value, np.ndarray) and value.dtype == np.float32:
        with np.errstate(over="ignore"):
            return value.astype(np.float16).astype(np.float32)
    return value


def link(lowered: Lowered, fp16: bool = False) -> Plan:
    """Lay a lowered function out as slots and steps, with in-place KV updates where safe.

    ``fp16``: round every op's float result to fp16, like the Neural Engine (the KV state
    too: it is written from rounded values)."""
    steps, states, output_names, consts = lowered.steps, lowered.states, lowered.output_names, lowered.consts
    in_place = plan_in_place(steps, states, output_names)
    aliases = state_aliases(steps, states)

    slots: dict[str, int] = {}

    def slot(var_name: str) -> int:
        if var_name not in slots:
            slots[var_name] = len(slots)
        return slots[var_name]

    flat_steps = []
    for i, s in enumerate(steps):
        fn = s["kernel"].fn
        if i in in_place:
            fn = in_place[i]
        if fp16 and not s["kernel"].state_role:
            fn = _fp16(fn)
        ins = tuple(slot(n) for n in s["ins"])
        outs = [slot(n) for n in s["outs"]]
        flat_steps.append((fn, ins, outs[0] if len(outs) == 1 else tuple(outs)))
    for n in output_names:
        slot(n)
    input_slots = {n: slot(v) for n, v in lowered.inputs.items()}
    state_slots = {n: slot(v) for n, v in states.items()}
    template: list[Any] = [None] * len(slots)
    for n, i in slots.items():
        if n in consts:
            template[i] = consts[n]
    missing = [n for n in output_names if n not in consts and not any(n in s["outs"] for s in steps) and n not in lowered.inputs.values()]
    if missing:
        raise ModelFormatError(f"{lowered.source}: outputs {missing} are produced by no op")
    outputs = [(n, slots[n], bool(aliases.get(n))) for n in output_names]
    return Plan(
        name=lowered.name,
        source=lowered.source,
        steps=flat_steps,
        template=template,
        inputs=input_slots,
        states=state_slots,
        outputs=outputs,
        op_counts=lowered.op_counts,
        in_place_updates=len(in_place) // 2,
        arrays=list({id(v): v for v in consts.values() if isinstance(v, np.ndarray)}.values()),
    )


def _is_state(var) -> bool:
    if hasattr(var, "is_state"):  # a LiteVar restored from the plan cache
        return var.is_state
    from coremltools.converters.mil.mil import types

    return types.is_state(var.sym_type)


def _all_static(op) -> bool:
    """No input is a state (their read ops must run every time)."""
    return not any(_is_state(v) for v in flat_input_vars(op))


def flat_input_vars_for(op, names: tuple[str, ...]) -> list:
    out = []
    for n in names:
        v = op.inputs.get(n)
        if v is None:
            continue
        if isinstance(v, (tuple, list)):
            out.extend(v)
        else:
            out.append(v)
    return out


def build_kernel(op, consts: dict, source: str, allow_fallback: bool = True) -> Kernel:
    builder = KERNELS.get(op.op_type)
    if builder is not None:
        try:
            kern = builder(op, BuildContext(op, consts))
        except (NotConstant, NotImplementedError):
            kern = None
        if kern is not None and all(op.inputs.get(a) is not None for a in kern.args):
            return kern
    if allow_fallback and has_value_inference(op):
        return fallback_kernel(op)
    raise UnsupportedOp(
        f"{source}: the MIL executor has no implementation of op {op.op_type!r} (op {op.name!r})",
        hint="this model uses an op anechat cannot run on the CPU; on a Mac, Core ML runs it",
    )


def _materialize(op, consts: dict, raw: dict, keys: dict, cache: ConstCache, source: str) -> None:
    in_vars = flat_input_vars(op)
    for v in in_vars:
        if v.name not in raw:
            raise UnsupportedOp(f"{source}: {op.op_type} {op.name!r} takes a non-constant input {v.name!r}")
    key = (op.op_type,) + tuple(keys.get(v.name) or _small_key(raw[v.name]) for v in in_vars)
    made: dict[str, Any] = {}

    def make():
        if not hasattr(op, "materialized_val_inference"):
            raise UnsupportedOp(f"{source}: the MIL executor cannot materialize {op.op_type!r} ({op.name!r})")
        value = call_with_values(op, "materialized_val_inference", [raw[v.name] for v in in_vars])
        made["raw"] = value
        return tuple(as_float(np.asarray(x)) for x in value) if len(op.outputs) > 1 else as_float(np.asarray(value))

    value = cache.get_or_make(key, make)
    values = value if len(op.outputs) > 1 else (value,)
    for o, v in zip(op.outputs, values):
        consts[o.name] = v
        raw[o.name] = v  # a chained constexpr sees the fp32 value (numerically the same)
        keys[o.name] = key + (o.name,) if len(op.outputs) > 1 else key


def _small_key(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return (value.dtype.str, value.shape, value.tobytes())
    return repr(value)


def _release_program_values(function) -> None:
    """Drop the loader's copies of large constants: the plan holds its own (fp32) ones, and
    fallback kernels are handed every input value when they run."""
    for op in function.operations:
        if op.op_type == "const" or op.op_type.startswith("constexpr_"):
            for o in op.outputs:
                v = o._sym_val
                if v is not None and isinstance(v.val, np.ndarray) and v.val.size >= _DEDUPE_MIN_SIZE:
                    o._sym_val = None
