"""Which KV-cache writes may go into the state's array in place: a plan's ``slice_update``
feeding ``coreml_update_state`` of the same state, when nothing that may share that array is
read after the write (see :func:`plan_in_place`). Used by :mod:`.compiler` when it links a plan."""

from __future__ import annotations

from typing import Callable

from anechat.engines.coreml.mil.kernels import Kernel
from anechat.engines.coreml.mil.ops_state import update_in_place


def state_aliases(steps: list[dict], states: dict[str, str]) -> dict[str, frozenset]:
    """Var name -> the states whose array it may share memory with."""
    alias: dict[str, frozenset] = {}
    for s in steps:
        k: Kernel = s["kernel"]
        if k.state_role in ("read", "update"):
            st = _state_of(s["op"], states)
            for o in s["outs"]:
                alias[o] = frozenset([st])
        elif not k.fresh:
            a = frozenset().union(*[alias.get(n, frozenset()) for n in s["ins"]])
            for o in s["outs"]:
                alias[o] = a
    return alias


def _state_of(op, states: dict[str, str]) -> str:
    var = op.inputs.get("input") if op.op_type == "read_state" else op.inputs.get("state")
    for n, v in states.items():
        if v == var.name:
            return n
    return var.name


def _is_passthrough(step: dict) -> bool:
    """Ops that hand their (fp32) input on unchanged: identity, and casts between float types."""
    op = step["op"]
    if op.op_type == "identity":
        return True
    if op.op_type == "cast":
        dtype = op.inputs.get("dtype")
        return dtype is not None and dtype.val in ("fp16", "fp32")
    return False


def plan_in_place(steps: list[dict], states: dict[str, str], output_names: list[str]) -> dict[int, Callable]:
    """Which slice_update / coreml_update_state pairs may write the state array in place.

    Allowed when the slice_update's input is the state's current array (read_state or the
    last update, maybe through float casts), nothing that may share that array is read
    after the write, and the result goes (maybe through float casts) only into
    coreml_update_state of the same state.
    """
    alias = state_aliases(steps, states)
    producer: dict[str, int] = {}
    last_use: dict[str, int] = {}
    consumers: dict[str, list[int]] = {}
    for i, s in enumerate(steps):
        for o in s["outs"]:
            producer[o] = i
        for n in s["ins"]:
            last_use[n] = i
            consumers.setdefault(n, []).append(i)
    for n in output_names:
        last_use[n] = len(steps) + 1
    result: dict[int, Callable] = {}
    for p, s in enumerate(steps):
        k: Kernel = s["kernel"]
        if s["op"].op_type != "slice_update" or not hasattr(k, "in_place"):
            continue
        xp = producer.get(s["op"].inputs["x"].name)
        while xp is not None and _is_passthrough(steps[xp]):
            xp = producer.get(steps[xp]["ins"][0])
        if xp is None or steps[xp]["kernel"].state_role not in ("read", "update"):
            continue
        st = _state_of(steps[xp]["op"], states)
        cur, chain, q = s["outs"][0], [], None
        while True:
            users = consumers.get(cur, [])
            if len(users) != 1 or cur in output_names:
                break
            if _is_passthrough(steps[users[0]]):
                chain.append(users[0])
                cur = steps[users[0]]["outs"][0]
                continue
            q = users[0]
            break
        if q is None:
            continue
        qs = steps[q]
        if qs["kernel"].state_role != "update" or _state_of(qs["op"], states) != st or qs["op"].inputs["value"].name != cur:
            continue
        between = [j for j in range(p + 1, q) if j not in chain]
        if any(st in alias.get(n, ()) for j in between for n in steps[j]["ins"]):
            continue
        if any(steps[j]["kernel"].state_role and _state_of(steps[j]["op"], states) == st for j in between):
            continue
        if any(st in a and producer.get(v, -1) < p and last_use.get(v, -1) > p for v, a in alias.items()):
            continue
        if any(st in alias.get(n, ()) for n in s["ins"][1:]):  # the update reads the state itself
            continue
        result[p] = k.in_place  # type: ignore[attr-defined]
        result[q] = update_in_place
    return result
