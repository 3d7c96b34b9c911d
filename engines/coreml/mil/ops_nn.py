"""Matrix kernels: conv (a 1x1 conv is a matmul), matmul, linear."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from anechat.engines.coreml.mil.kernels import BuildContext, Kernel, kernel


@kernel("matmul")
def _matmul(op, ctx: BuildContext) -> Kernel:
    tx = bool(ctx.const("transpose_x", False))
    ty = bool(ctx.const("transpose_y", False))
    if ctx.is_const("y") and ty:
        # a constant right-hand side is transposed once, here
        yt = np.ascontiguousarray(np.swapaxes(np.asarray(ctx.const("y"), np.float32), -1, -2))
        if tx:
            return Kernel(lambda x, _y: np.matmul(np.swapaxes(x, -1, -2), yt), ("x", "y"))
        return Kernel(lambda x, _y: np.matmul(x, yt), ("x", "y"))

    def matmul(x, y):
        if tx:
            x = np.swapaxes(x, -1, -2)
        if ty:
            y = np.swapaxes(y, -1, -2)
        return np.matmul(x, y)

    return Kernel(matmul, ("x", "y"))


@kernel("linear")
def _linear(op, ctx: BuildContext) -> Kernel:
    wt = np.ascontiguousarray(np.asarray(ctx.const("weight"), np.float32).T)
    bias = ctx.const("bias", None)
    b = None if bias is None else np.asarray(bias, np.float32)
    if b is None:
        return Kernel(lambda x: np.matmul(x, wt), ("x",))
    return Kernel(lambda x: np.matmul(x, wt) + b, ("x",))


def _conv_params(ctx: BuildContext, spatial: int):
    ones = [1] * spatial
    strides = [int(s) for s in np.asarray(ctx.const("strides", ones)).reshape(-1)]
    dilations = [int(d) for d in np.asarray(ctx.const("dilations", ones)).reshape(-1)]
    pad_type = str(ctx.const("pad_type", "valid"))
    pad = [int(p) for p in np.asarray(ctx.const("pad", [0] * 2 * spatial)).reshape(-1)]
    groups = int(ctx.const("groups", 1))
    return strides, dilations, pad_type, pad, groups


@kernel("conv")
def _conv(op, ctx: BuildContext) -> Kernel:
    weight = np.asarray(ctx.const("weight"), np.float32)  # (C_out, C_in / groups, *kernel)
    bias = ctx.const("bias", None)
    bias = None if bias is None else np.asarray(bias, np.float32)
    spatial = weight.ndim - 2
    strides, dilations, pad_type, pad, groups = _conv_params(ctx, spatial)
    c_out = weight.shape[0]
    pointwise = (
        groups == 1
        and all(k == 1 for k in weight.shape[2:])
        and all(s == 1 for s in strides)
        and (pad_type != "custom" or not any(pad))
    )
    if pointwise:
        w2 = np.ascontiguousarray(weight.reshape(c_out, -1))
        b2 = None if bias is None else bias.reshape(c_out, 1)

        def conv1x1(x: np.ndarray) -> np.ndarray:
            n, c = x.shape[0], x.shape[1]
            y = np.matmul(w2, x.reshape(n, c, -1))
            if b2 is not None:
                y += b2
            return y.reshape((n, c_out) + x.shape[2:])

        return Kernel(conv1x1, ("x",))

    bshape = (1, c_out) + (1,) * spatial
    bias_b = None if bias is None else bias.reshape(bshape)

    def conv(x: np.ndarray) -> np.ndarray:
        return _conv_general(x, weight, bias_b, strides, dilations, pad_type, pad, groups)

    return Kernel(conv, ("x",))


def _conv_general(x, weight, bias, strides, dilations, pad_type, pad, groups):
    spatial = weight.ndim - 2
    ksize = weight.shape[2:]
    eff = [(k - 1) * d + 1 for k, d in zip(ksize, dilations)]
    if pad_type == "custom":
        pads = [(pad[2 * i], pad[2 * i + 1]) for i in range(spatial)]
    elif pad_type in ("same", "same_lower"):
        pads = []
        for i in range(spatial):
            n = x.shape[2 + i]
            out = -(-n // strides[i])
            total = max((out - 1) * strides[i] + eff[i] - n, 0)
            lo = total // 2 if pad_type == "same" else total - total // 2
            pads.append((lo, total - lo))
    else:
        pads = [(0, 0)] * spatial
    xp = np.pad(x, [(0, 0), (0, 0)] + pads)
    windows = sliding_window_view(xp, eff, axis=tuple(range(2, 2 + spatial)))
    index = (slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)
    index += tuple(slice(None, None, d) for d in dilations)
    windows = windows[index]  # (N, C_in, *out, *kernel)
    n, c_in = x.shape[:2]
    cg = c_in // groups
    og = weight.shape[0] // groups
    outs = []
    letters = "hijk"[:spatial]
    klet = "pqrs"[:spatial]
    expr = f"nc{letters}{klet},oc{klet}->no{letters}"
    for g in range(groups):
        wg = weight[g * og:(g + 1) * og]
        outs.append(np.einsum(expr, windows[:, g * cg:(g + 1) * cg], wg, optimize=True))
    y = np.concatenate(outs, axis=1) if groups > 1 else outs[0]
    if bias is not None:
        y = y + bias
    return y.astype(np.float32, copy=False)
