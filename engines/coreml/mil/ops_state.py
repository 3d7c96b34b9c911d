"""Stateful kernels: read_state, coreml_update_state and slice_update.

A state input of a MIL function is bound, at run time, to a :class:`StateSlot`
that holds the state's current array. ``read_state`` hands out that array itself
(no copy). ``slice_update`` normally copies its input; the compiler switches it to
``in_place`` when its input is a state's array that nothing else still reads and
its result goes straight back into the same state — the usual KV-cache update —
so a token costs the size of its slice, not the size of the cache.
"""

from __future__ import annotations

import numpy as np

from anechat.engines.coreml.mil.ops_tensor import _slice_args, slice_spec
from anechat.engines.coreml.mil.kernels import BuildContext, Kernel, kernel


class StateSlot:
    """The current value of one state (fp32). Shared by every function that declares it."""

    __slots__ = ("name", "value")

    def __init__(self, name: str, value: np.ndarray):
        self.name = name
        self.value = value

    def __repr__(self) -> str:
        return f"StateSlot({self.name!r}, shape={self.value.shape})"


@kernel("read_state")
def _read_state(op, ctx: BuildContext) -> Kernel:
    return Kernel(lambda slot: slot.value, ("input",), fresh=False, state_role="read")


@kernel("coreml_update_state")
def _update_state(op, ctx: BuildContext) -> Kernel:
    def update_copy(slot: StateSlot, value: np.ndarray) -> np.ndarray:
        # rebind rather than write into the old array: values read earlier keep their contents
        slot.value = np.array(value, dtype=np.float32, copy=True)
        return slot.value

    return Kernel(update_copy, ("state", "value"), fresh=False, state_role="update")


def update_in_place(slot: StateSlot, value: np.ndarray) -> np.ndarray:
    """The update after an in-place slice_update: ``value`` already is the new state array."""
    slot.value = value
    return value


@kernel("slice_update")
def _slice_update(op, ctx: BuildContext) -> Kernel:
    stride, (bm, em, sm) = _slice_args(ctx)
    const_index = None
    if ctx.is_const("begin") and ctx.is_const("end"):
        const_index = slice_spec(np.asarray(ctx.const("begin")).reshape(-1), np.asarray(ctx.const("end")).reshape(-1), stride, bm, em, sm)

    def index_of(begin, end):
        if const_index is not None:
            return const_index
        return slice_spec(np.asarray(begin).reshape(-1), np.asarray(end).reshape(-1), stride, bm, em, sm)

    def slice_update(x, update, begin, end):
        out = np.array(x, dtype=x.dtype, copy=True)
        _assign(out, index_of(begin, end), update)
        return out

    def in_place(x, update, begin, end):
        _assign(x, index_of(begin, end), update)
        return x

    k = Kernel(slice_update, ("x", "update", "begin", "end"))
    k.in_place = in_place  # type: ignore[attr-defined]
    return k


def _assign(out: np.ndarray, index: tuple, update) -> None:
    target = out[index]
    if target.shape != np.shape(update):
        if target.size != np.size(update):
            raise ValueError(
                f"slice_update: the update has shape {np.shape(update)} but the slice {index} of {out.shape} "
                f"has shape {target.shape} (a position past the end of the state?)"
            )
        update = np.reshape(update, target.shape)
    out[index] = update
