"""Elementwise, activation, reduction and normalization kernels (numpy, fp32)."""

from __future__ import annotations

import numpy as np

from anechat.engines.coreml.mil.kernels import BuildContext, Kernel, kernel

_BINARY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "maximum": np.maximum,
    "minimum": np.minimum,
    "pow": np.power,
    "floor_div": np.floor_divide,
    "mod": np.mod,
    "equal": np.equal,
    "not_equal": np.not_equal,
    "greater": np.greater,
    "greater_equal": np.greater_equal,
    "less": np.less,
    "less_equal": np.less_equal,
    "logical_and": np.logical_and,
    "logical_or": np.logical_or,
    "logical_xor": np.logical_xor,
}


def _binary(op, ctx: BuildContext) -> Kernel:
    return Kernel(_BINARY[op.op_type], ("x", "y"))


for _name in _BINARY:
    kernel(_name)(_binary)


@kernel("real_div")
def _real_div(op, ctx: BuildContext) -> Kernel:
    def real_div(x, y):
        r = np.true_divide(x, y)
        return r.astype(np.float32, copy=False) if isinstance(r, np.ndarray) else np.float32(r)

    return Kernel(real_div, ("x", "y"))


_UNARY = {
    "exp": np.exp,
    "exp2": np.exp2,
    "log": np.log,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "tanh": np.tanh,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "floor": np.floor,
    "ceil": np.ceil,
    "round": np.round,
    "sign": np.sign,
    "square": np.square,
    "logical_not": np.logical_not,
}


def _unary(op, ctx: BuildContext) -> Kernel:
    return Kernel(_UNARY[op.op_type], ("x",))


for _name in _UNARY:
    kernel(_name)(_unary)


@kernel("relu")
def _relu(op, ctx: BuildContext) -> Kernel:
    return Kernel(lambda x: np.maximum(x, 0, dtype=x.dtype), ("x",))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


@kernel("sigmoid")
def _sigmoid_k(op, ctx: BuildContext) -> Kernel:
    return Kernel(_sigmoid, ("x",))


def _silu(x: np.ndarray) -> np.ndarray:
    return x * _sigmoid(x)


@kernel("silu")
def _silu_k(op, ctx: BuildContext) -> Kernel:
    return Kernel(_silu, ("x",))


@kernel("rsqrt")
def _rsqrt(op, ctx: BuildContext) -> Kernel:
    eps = np.float32(ctx.const("epsilon", 1e-12))
    return Kernel(lambda x: 1.0 / np.sqrt(x + eps), ("x",))


@kernel("inverse")
def _inverse(op, ctx: BuildContext) -> Kernel:
    eps = np.float32(ctx.const("epsilon", 1e-4))
    return Kernel(lambda x: 1.0 / (x + eps), ("x",))


@kernel("clip")
def _clip(op, ctx: BuildContext) -> Kernel:
    return Kernel(np.clip, ("x", "alpha", "beta"))


@kernel("select")
def _select(op, ctx: BuildContext) -> Kernel:
    return Kernel(np.where, ("cond", "a", "b"))


@kernel("softmax")
def _softmax(op, ctx: BuildContext) -> Kernel:
    axis = int(ctx.const("axis", -1))

    def softmax(x: np.ndarray) -> np.ndarray:
        e = np.exp(x - x.max(axis=axis, keepdims=True))
        e /= e.sum(axis=axis, keepdims=True)
        return e

    return Kernel(softmax, ("x",))


@kernel("layer_norm")
def _layer_norm(op, ctx: BuildContext) -> Kernel:
    rank = ctx.rank("x")
    axes_val = ctx.const("axes", None)
    axes = tuple(range(rank)) if axes_val is None else tuple(int(a) % rank for a in np.asarray(axes_val).reshape(-1))
    eps = np.float32(ctx.const("epsilon", 1e-5))
    bshape = None
    if ctx.has("gamma") or ctx.has("beta"):
        shape = ctx.var("x").shape
        bshape = tuple(shape[a] if a in axes else 1 for a in range(rank))
    gamma = ctx.const("gamma", None)
    beta = ctx.const("beta", None)
    gamma = None if gamma is None else np.asarray(gamma, np.float32).reshape(bshape)
    beta = None if beta is None else np.asarray(beta, np.float32).reshape(bshape)

    def layer_norm(x: np.ndarray) -> np.ndarray:
        mean = x.mean(axis=axes, keepdims=True)
        d = x - mean
        var = np.mean(np.square(d), axis=axes, keepdims=True)
        d *= 1.0 / np.sqrt(var + eps)
        if gamma is not None:
            d *= gamma
        if beta is not None:
            d += beta
        return d

    return Kernel(layer_norm, ("x",))


def _axes(ctx: BuildContext, rank: int):
    v = ctx.const("axes", None)
    if v is None:
        return None
    return tuple(int(a) % rank for a in np.asarray(v).reshape(-1))


_REDUCE = {
    "reduce_sum": np.sum,
    "reduce_mean": np.mean,
    "reduce_max": np.max,
    "reduce_min": np.min,
    "reduce_prod": np.prod,
}


def _reduce(op, ctx: BuildContext) -> Kernel:
    fn = _REDUCE[op.op_type]
    axes = _axes(ctx, ctx.rank("x"))
    keep = bool(ctx.const("keep_dims", False))
    return Kernel(lambda x: np.asarray(fn(x, axis=axes, keepdims=keep)), ("x",))


for _name in _REDUCE:
    kernel(_name)(_reduce)


@kernel("reduce_sum_square")
def _reduce_sum_square(op, ctx: BuildContext) -> Kernel:
    axes = _axes(ctx, ctx.rank("x"))
    keep = bool(ctx.const("keep_dims", False))
    return Kernel(lambda x: np.asarray(np.sum(np.square(x), axis=axes, keepdims=keep)), ("x",))


@kernel("reduce_argmax", "reduce_argmin")
def _reduce_arg(op, ctx: BuildContext) -> Kernel:
    axis = int(ctx.const("axis", -1))
    keep = bool(ctx.const("keep_dims", False))
    fn = np.argmax if op.op_type == "reduce_argmax" else np.argmin

    def arg(x: np.ndarray) -> np.ndarray:
        return np.asarray(fn(x, axis=axis, keepdims=keep), dtype=np.int32)

    return Kernel(arg, ("x",))


_CAST = {
    "fp16": np.float32,  # the executor keeps floats in fp32
    "fp32": np.float32,
    "fp64": np.float32,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "bool": np.bool_,
}


@kernel("cast")
def _cast(op, ctx: BuildContext) -> Kernel:
    name = str(ctx.const("dtype"))
    if name not in _CAST:
        raise NotImplementedError(f"cast to {name}")
    dt = _CAST[name]
    if dt is np.float32:
        # floats stay floats (a view when nothing changes), ints/bools become fp32
        return Kernel(lambda x: np.asarray(x, dtype=np.float32), ("x",), fresh=False)
    if name.startswith("int") or name.startswith("uint"):
        # MIL casts float -> int by truncation toward zero, as numpy does
        return Kernel(lambda x: np.asarray(x).astype(dt), ("x",))
    return Kernel(lambda x: np.asarray(x).astype(dt), ("x",))
