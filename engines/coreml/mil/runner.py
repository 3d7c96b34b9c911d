"""Runs a compiled :class:`Plan`: the tight per-token loop."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from anechat.engines.errors import ModelFormatError
from anechat.engines.coreml.mil.compiler import Plan
from anechat.engines.coreml.mil.ops_state import StateSlot


class MILRunError(ModelFormatError):
    """An op failed while running (names the op's kernel and the part)."""


def run_plan(plan: Plan, inputs: Mapping[str, np.ndarray], states: Mapping[str, StateSlot] | None = None) -> dict[str, np.ndarray]:
    env = plan.template.copy()
    for name, slot in plan.inputs.items():
        if name not in inputs:
            raise MILRunError(f"{plan.source} ({plan.name}): input {name!r} is missing")
        value = np.asarray(inputs[name])
        if value.dtype == np.float16 or value.dtype == np.float64:
            value = value.astype(np.float32)
        env[slot] = value
    for name, slot in plan.states.items():
        if states is None or name not in states:
            raise MILRunError(f"{plan.source} ({plan.name}): state {name!r} is missing")
        env[slot] = states[name]
    i = 0
    steps = plan.steps
    try:
        for i, (fn, ins, out) in enumerate(steps):
            result = fn(*[env[k] for k in ins])
            if out.__class__ is int:
                env[out] = result
            else:
                for o, r in zip(out, result):
                    env[o] = r
    except (ValueError, IndexError, TypeError) as exc:
        fn = steps[i][0]
        raise MILRunError(f"{plan.source} ({plan.name}): step {i} ({getattr(fn, '__qualname__', fn)}) failed: {exc}") from exc
    return {name: (np.array(env[slot]) if copy else env[slot]) for name, slot, copy in plan.outputs}
