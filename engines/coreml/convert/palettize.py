"""LUT palettization of a converted part, done on its MIL program in place.

Each large weight of the chosen ops ("conv" for the projections, "gather" for the
embedding table) becomes ``constexpr_lut_to_dense`` — one ``2**nbits`` table per
``group_size`` output channels — followed, with ``per_channel_scale``, by
``constexpr_blockwise_shift_scale`` holding one fp16 scale per output channel (iOS 18
ops). Values are normalised by
their channel's largest magnitude before clustering, so one table serves channels of
different ranges. ``inputs`` (see :mod:`.calibration`: what each projection saw on a
calibration text) weigh each input channel's error in the k-means, and then choose each
value's table entry by error feedback (:mod:`.feedback`) instead of nearest rounding.
Weights of 2048 elements or fewer, and every other constant (norms, rotary
tables), stay fp16.

Tables are memoised by weight content, so a chunk's ``infer`` and ``prefill`` functions
get identical constants (the multifunction package then stores them once).
"""

from __future__ import annotations

import contextlib
import hashlib
import math

import numpy as np

from anechat.engines.coreml.convert.feedback import Factor, round_with_feedback
from anechat.engines.coreml.convert.kmeans import kmeans_rows

#: weights with this many elements or fewer stay fp16 (coremltools' default threshold, as ANEMLL leaves it)
WEIGHT_THRESHOLD = 2048
#: the input of each op type that holds its weight
WEIGHT_INPUT = {"conv": "weight", "gather": "x"}


def weight_key(weight: np.ndarray) -> str:
    """Identifies a weight by its fp16 bytes and its (outputs, values per output) shape: the
    same for the torch module's (out, in, 1, 1) conv weight and the (out, in, 1) constant
    that coremltools' passes leave in the converted program."""
    data = np.ascontiguousarray(np.asarray(weight, dtype=np.float16))
    rows = data.shape[0] if data.ndim else 1
    return hashlib.blake2b(memoryview(data).cast("B"), digest_size=16).hexdigest() + str((rows, data.size // max(rows, 1)))


class LUTPalettizer:
    """Palettizes MIL programs; one instance per recipe, shared by the parts it applies to."""

    def __init__(
        self, nbits: int, group_size: int, per_channel_scale: bool = True, inputs: dict | None = None, feedback: bool = True
    ) -> None:
        self.nbits, self.group_size, self.per_channel_scale = nbits, group_size, per_channel_scale
        #: weight_key -> the Gram matrix of its inputs on the calibration text (:class:`~.calibration.InputGram`)
        self.inputs = inputs or {}
        self.feedback = feedback
        #: id(InputGram) -> the mean square of each input channel
        self._importance_of: dict[int, np.ndarray] = {}
        self._memo: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = {}
        self.computed = self.reused = 0

    def tables(self, weight: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(indices uint8 shaped like ``weight``, lut (groups, 2**nbits) fp16, scales (out,) fp16 or None)."""
        return self.tables_many([weight])[0]

    def tables_many(self, weights: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """:meth:`tables` of each weight. Weights that read the same calibration inputs (q/k/v,
        gate/up) are rounded with error feedback together, as one matrix of their stacked rows."""
        keys = [weight_key(w) for w in weights]
        todo: dict[str, dict] = {}
        for key, weight in zip(keys, weights):
            if key in self._memo or key in todo:
                self.reused += 1
            else:
                self.computed += 1
                todo[key] = self._cluster(key, weight)
        shared: dict[int, list[dict]] = {}
        for c in todo.values():
            if c["seen"] is not None and self.feedback:
                shared.setdefault(id(c["seen"]), []).append(c)
        for batch in shared.values():  # one factor at a time: each is as large as its Gram matrix
            rows = np.concatenate([c["rows"] for c in batch])
            per_row = np.concatenate([np.repeat(c["centers"].astype(np.float32), c["group"], axis=0) for c in batch])
            index = round_with_feedback(rows, per_row, 1, Factor(batch[0]["seen"].mean()))
            start = 0
            for c in batch:
                c["index"], start = index[start : start + len(c["rows"])], start + len(c["rows"])
        for key, c in todo.items():
            self._memo[key] = (c["index"].reshape(c["shape"]), c["centers"], c["scale"])
        return [self._memo[key] for key in keys]

    def _cluster(self, key: str, weight: np.ndarray) -> dict:
        """Scales, the weighted k-means tables and nearest-entry indices of one weight."""
        out = weight.shape[0]
        rows = np.asarray(weight, dtype=np.float32).reshape(out, -1)
        scale = None
        if self.per_channel_scale:
            peak = np.abs(rows).max(axis=1)
            scale = np.where(peak > 0, peak, 1.0).astype(np.float16)
            rows = rows / scale.astype(np.float32)[:, None]
        group = math.gcd(out, self.group_size)
        cols = rows.shape[1]
        seen = self.inputs.get(key)
        if seen is not None and seen.channels != cols:
            seen = None
        w = None if seen is None else np.tile(self._importance(seen), group)[None, :]
        centers, index = kmeans_rows(rows.reshape(out // group, group * cols), self.nbits, w)
        return {"shape": weight.shape, "rows": rows, "scale": scale, "group": group, "centers": centers.astype(np.float16),
                "index": index.reshape(out, cols), "seen": seen}

    def _importance(self, seen) -> np.ndarray:
        """Each input channel's mean square on the calibration text, once per InputGram."""
        hit = self._importance_of.get(id(seen))
        if hit is None:
            hit = self._importance_of[id(seen)] = np.diag(seen.mean()).copy()
        return hit

    @property
    def label(self) -> str:
        return f"LUT{self.nbits}"

    def apply(self, program, op_type: str) -> int:
        """Palettize the weights of ``op_type`` ops in every function of ``program``; returns how many."""
        return apply_tables(program, op_type, self.tables_many)


class MixedLUT:
    """A part palettized at several sizes: a weight whose :func:`weight_key` has a role in
    ``roles`` goes to that role's palettizer in ``by_role``, every other one to ``rest``
    (anechat's mixed recipes: see :meth:`~.options.CoreMLConvertOptions.ffn_bits`)."""

    def __init__(self, rest: LUTPalettizer, by_role: dict[str, LUTPalettizer], roles: dict[str, str]) -> None:
        self.rest, self.by_role, self.roles = rest, by_role, roles
        self.nbits = rest.nbits

    @property
    def label(self) -> str:
        return f"LUT{self.rest.nbits}" + "".join(f", {role} LUT{p.nbits}" for role, p in self.by_role.items() if p is not self.rest)

    def tables_many(self, weights: list[np.ndarray]) -> list[tuple]:
        chosen = [self.by_role.get(self.roles.get(weight_key(w), ""), self.rest) for w in weights]
        results: dict[int, list] = {}
        for palettizer in {id(p): p for p in chosen}.values():
            mine = [w for w, p in zip(weights, chosen) if p is palettizer]
            results[id(palettizer)] = palettizer.tables_many(mine)[::-1]
        return [results[id(p)].pop() for p in chosen]

    def apply(self, program, op_type: str) -> int:
        return apply_tables(program, op_type, self.tables_many)


def apply_tables(program, op_type: str, tables_many) -> int:
    """Replace each large weight of ``op_type`` ops in every function of ``program`` by its
    lookup table (``tables_many``: weights -> (indices, lut, scales) each); returns how many."""
    found = [(function, op) for function in program.functions.values() for op in function.operations if _eligible(op, op_type)]
    tables = tables_many([op.outputs[0].val for _, op in found])
    by_function: dict[int, tuple] = {}
    for (function, op), table in zip(found, tables):
        by_function.setdefault(id(function), (function, []))[1].append((op, table))
    for function, replacements in by_function.values():
        with function:  # leaving a function's context walks all of its ops: once per function, not per weight
            for op, (index, lut, scale) in replacements:
                _replace(function, op, index, lut, scale)
    return len(found)


def _replace(function, op, index: np.ndarray, lut: np.ndarray, scale: np.ndarray | None) -> None:
    """Put ``op``'s weight as a lookup table (and per-channel scales) in its place."""
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.frontend._utils import _construct_constexpr_lut_op
    from coremltools.converters.mil.mil.scope import ScopeInfo

    weight = op.outputs[0].val
    groups = lut.shape[0]
    lut_shape = (groups,) + (1,) * (weight.ndim - 1) + (lut.shape[1], 1)
    with contextlib.ExitStack() as scopes:  # the new ops inherit the weight's essential scopes
        for source in function._essential_scope_sources:
            scopes.enter_context(mb.scope(ScopeInfo(source=source, data=list(op.scopes.get(source) or [op.name]))))
        new = _construct_constexpr_lut_op(index, lut.reshape(lut_shape), None, name=op.name + "_palettized", before_op=op)
        if scale is not None:
            new = mb.constexpr_blockwise_shift_scale(
                data=new, scale=scale.reshape((-1,) + (1,) * (weight.ndim - 1)), before_op=op, name=op.name + "_palettized_pcs"
            )
    op.enclosing_block.replace_uses_of_var_after_op(anchor_op=op, old_var=op.outputs[0], new_var=new, no_check_var_types=True)
    op.enclosing_block.remove_ops([op])


def _eligible(op, op_type: str) -> bool:
    if op.op_type != "const":
        return False
    value = op.outputs[0].val
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f" or value.size <= WEIGHT_THRESHOLD:
        return False
    users = op.outputs[0].child_ops
    return bool(users) and all(u.op_type == op_type and u.inputs.get(WEIGHT_INPUT[op_type]) is op.outputs[0] for u in users)
