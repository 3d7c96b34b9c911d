"""Shape and indexing kernels: reshape, transpose, concat, split, slices, gather, ...

Kernels that return numpy views say so (``fresh=False``): the compiler needs to
know which values may share memory with a state buffer before it updates that
buffer in place.
"""

from __future__ import annotations

import numpy as np

from anechat.engines.coreml.mil.kernels import BuildContext, Kernel, NotConstant, const_bool_list, kernel


@kernel("identity")
def _identity(op, ctx: BuildContext) -> Kernel:
    return Kernel(lambda x: x, ("x",), fresh=False)


@kernel("reshape")
def _reshape(op, ctx: BuildContext) -> Kernel:
    if ctx.is_const("shape"):
        shape = tuple(int(s) for s in np.asarray(ctx.const("shape")).reshape(-1))
        if 0 in shape:  # iOS17 reshape: 0 copies the input's dimension
            return Kernel(lambda x: x.reshape(_zeros_copied(shape, x.shape)), ("x",), fresh=False)
        return Kernel(lambda x: x.reshape(shape), ("x",), fresh=False)
    return Kernel(lambda x, s: x.reshape(_zeros_copied(tuple(int(v) for v in s), x.shape)), ("x", "shape"), fresh=False)


def _zeros_copied(shape: tuple[int, ...], src: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(src[i] if s == 0 else s for i, s in enumerate(shape))


@kernel("transpose")
def _transpose(op, ctx: BuildContext) -> Kernel:
    perm = tuple(int(p) for p in np.asarray(ctx.const("perm")).reshape(-1))
    return Kernel(lambda x: x.transpose(perm), ("x",), fresh=False)


@kernel("expand_dims")
def _expand_dims(op, ctx: BuildContext) -> Kernel:
    axes = [int(a) for a in np.asarray(ctx.const("axes")).reshape(-1)]
    out_rank = ctx.rank("x") + len(axes)
    axes_t = tuple(sorted(a % out_rank for a in axes))
    return Kernel(lambda x: np.expand_dims(x, axes_t), ("x",), fresh=False)


@kernel("squeeze")
def _squeeze(op, ctx: BuildContext) -> Kernel:
    axes = ctx.const("axes", None)
    if axes is None:
        return Kernel(lambda x: np.squeeze(x), ("x",), fresh=False)
    rank = ctx.rank("x")
    axes_t = tuple(int(a) % rank for a in np.asarray(axes).reshape(-1))
    return Kernel(lambda x: np.squeeze(x, axis=axes_t), ("x",), fresh=False)


@kernel("concat")
def _concat(op, ctx: BuildContext) -> Kernel:
    axis = int(ctx.const("axis"))
    if bool(ctx.const("interleave", False)):
        def interleave(*vs):
            stacked = np.stack(vs, axis=axis + 1 if axis >= 0 else axis)
            shape = list(vs[0].shape)
            shape[axis] = sum(v.shape[axis] for v in vs)
            return stacked.reshape(shape)

        return Kernel(interleave, ("values",))
    return Kernel(lambda *vs: np.concatenate(vs, axis=axis), ("values",))


@kernel("stack")
def _stack(op, ctx: BuildContext) -> Kernel:
    axis = int(ctx.const("axis"))
    return Kernel(lambda *vs: np.stack(vs, axis=axis), ("values",))


@kernel("split")
def _split(op, ctx: BuildContext) -> Kernel:
    axis = int(ctx.const("axis"))
    sizes = ctx.const("split_sizes", None)
    if sizes is not None:
        cuts = np.cumsum(np.asarray(sizes).reshape(-1))[:-1].tolist()
        return Kernel(lambda x: tuple(np.split(x, cuts, axis=axis)), ("x",), fresh=False)
    n = int(ctx.const("num_splits"))
    return Kernel(lambda x: tuple(np.split(x, n, axis=axis)), ("x",), fresh=False)


@kernel("tile")
def _tile(op, ctx: BuildContext) -> Kernel:
    reps = tuple(int(r) for r in np.asarray(ctx.const("reps")).reshape(-1))
    return Kernel(lambda x: np.tile(x, reps), ("x",))


def slice_spec(begin, end, stride, begin_mask, end_mask, squeeze_mask) -> tuple:
    """A numpy index tuple for MIL's slice_by_index / slice_update arguments."""
    index = []
    for i, b in enumerate(begin):
        b = int(b)
        if squeeze_mask[i]:
            index.append(b)
            continue
        e = int(end[i])
        s = int(stride[i]) if stride is not None else 1
        index.append(slice(None if begin_mask[i] else b, None if end_mask[i] else e, s))
    return tuple(index)


def _slice_args(ctx: BuildContext):
    rank = ctx.rank("x")
    stride = ctx.const("stride", None)
    stride = None if stride is None else [int(s) for s in np.asarray(stride).reshape(-1)]
    masks = [const_bool_list(ctx, n, rank) for n in ("begin_mask", "end_mask", "squeeze_mask")]
    return stride, masks


@kernel("slice_by_index")
def _slice_by_index(op, ctx: BuildContext) -> Kernel:
    stride, (bm, em, sm) = _slice_args(ctx)
    if ctx.is_const("begin") and ctx.is_const("end"):
        index = slice_spec(np.asarray(ctx.const("begin")).reshape(-1), np.asarray(ctx.const("end")).reshape(-1), stride, bm, em, sm)
        return Kernel(lambda x: x[index], ("x",), fresh=False)

    def slice_dyn(x, begin, end):
        return x[slice_spec(np.asarray(begin).reshape(-1), np.asarray(end).reshape(-1), stride, bm, em, sm)]

    return Kernel(slice_dyn, ("x", "begin", "end"), fresh=False)


@kernel("slice_by_size")
def _slice_by_size(op, ctx: BuildContext) -> Kernel:
    def slice_size(x, begin, size):
        index = []
        for d, (b, s) in enumerate(zip(np.asarray(begin).reshape(-1), np.asarray(size).reshape(-1))):
            b, s = int(b), int(s)
            index.append(slice(b, x.shape[d] if s == -1 else b + s))
        return x[tuple(index)]

    return Kernel(slice_size, ("x", "begin", "size"), fresh=False)


@kernel("gather")
def _gather(op, ctx: BuildContext) -> Kernel:
    axis = int(ctx.const("axis", 0))
    batch_dims = int(ctx.const("batch_dims", 0))
    if batch_dims != 0:
        raise NotConstant("batch_dims")  # rare: handled by coremltools' value_inference
    return Kernel(lambda x, indices: np.take(x, np.asarray(indices, dtype=np.intp), axis=axis), ("x", "indices"))


@kernel("gather_along_axis")
def _gather_along_axis(op, ctx: BuildContext) -> Kernel:
    axis = int(ctx.const("axis", 0))
    return Kernel(lambda x, indices: np.take_along_axis(x, np.asarray(indices, dtype=np.intp), axis=axis), ("x", "indices"))
