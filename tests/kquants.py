"""llama.cpp's Q4_K and Q6_K blocks, written and read here independently of anechat and gguf-py.

* :func:`quantize_q4_k` / :func:`quantize_q6_k` make valid blocks from float rows (a plain
  min/max scheme, good enough for tests; llama.cpp searches its scales more carefully);
* :func:`dequantize_q4_k_ref` / :func:`dequantize_q6_k_ref` are ggml's
  ``dequantize_row_q4_K`` / ``dequantize_row_q6_K`` transcribed loop for loop, the reference
  a test compares the importer's fast dequantization with.

Q4_K block (256 values, 144 bytes): f16 d, f16 dmin, 12 bytes of 6-bit scales and mins for
8 sub-blocks of 32, 128 bytes of 4-bit values. Q6_K block (256 values, 210 bytes): 128 bytes
of low 4 bits, 64 bytes of high 2 bits, 16 int8 scales for sub-blocks of 16, f16 d.
"""

from __future__ import annotations

import numpy as np

QK = 256
Q4_K_BYTES, Q6_K_BYTES = 144, 210


def _blocks(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] % QK:
        raise ValueError(f"rows of {x.shape[-1]} values are not whole blocks of {QK}")
    return x.reshape(-1, QK)


def quantize_q4_k(x: np.ndarray) -> np.ndarray:
    """Rows of floats -> uint8 array (rows, blocks * 144)."""
    rows = x.shape[0]
    b = _blocks(x).reshape(-1, 8, 32)
    lo, hi = np.minimum(b.min(-1), 0), b.max(-1)
    scale, mins = (hi - lo) / 15, -lo
    d = (scale.max(-1) / 63).astype(np.float16)
    dmin = (mins.max(-1) / 63).astype(np.float16)
    df, dminf = np.maximum(d.astype(np.float32), 1e-12), np.maximum(dmin.astype(np.float32), 1e-12)
    sc = np.clip(np.round(scale / df[:, None]), 0, 63).astype(np.uint8)
    m = np.clip(np.round(mins / dminf[:, None]), 0, 63).astype(np.uint8)
    eff_d = d.astype(np.float32)[:, None] * sc
    eff_m = dmin.astype(np.float32)[:, None] * m
    q = np.clip(np.round((b + eff_m[..., None]) / np.maximum(eff_d[..., None], 1e-12)), 0, 15).astype(np.uint8)
    scales = np.zeros((b.shape[0], 12), np.uint8)
    scales[:, 0:4] = (sc[:, 0:4] & 63) | ((sc[:, 4:8] >> 4) << 6)
    scales[:, 4:8] = (m[:, 0:4] & 63) | ((m[:, 4:8] >> 4) << 6)
    scales[:, 8:12] = (sc[:, 4:8] & 0xF) | ((m[:, 4:8] & 0xF) << 4)
    q = q.reshape(-1, 4, 2, 32)  # 4 groups of 64: low nibbles = first 32, high = second 32
    qs = (q[:, :, 0] | (q[:, :, 1] << 4)).reshape(-1, 128)
    out = np.concatenate([d.view(np.uint8).reshape(-1, 2), dmin.view(np.uint8).reshape(-1, 2), scales, qs], axis=1)
    return out.reshape(rows, -1)


def quantize_q6_k(x: np.ndarray) -> np.ndarray:
    """Rows of floats -> uint8 array (rows, blocks * 210)."""
    rows = x.shape[0]
    b = _blocks(x).reshape(-1, 16, 16)
    amax = np.abs(b).max(-1)
    sub = amax / 31
    d = (np.abs(sub).max(-1) / 127).astype(np.float16)
    sc = np.clip(np.round(sub / np.maximum(d.astype(np.float32)[:, None], 1e-12)), -128, 127).astype(np.int8)
    eff = d.astype(np.float32)[:, None] * sc
    q = (np.clip(np.round(b / np.maximum(eff[..., None], 1e-12)), -32, 31) + 32).astype(np.uint8).reshape(-1, 2, 4, 32)
    ql = np.concatenate([(q[:, :, 0] & 0xF) | ((q[:, :, 2] & 0xF) << 4), (q[:, :, 1] & 0xF) | ((q[:, :, 3] & 0xF) << 4)], axis=2)
    qh = (q[:, :, 0] >> 4) | ((q[:, :, 1] >> 4) << 2) | ((q[:, :, 2] >> 4) << 4) | ((q[:, :, 3] >> 4) << 6)
    out = np.concatenate([ql.reshape(-1, 128), qh.reshape(-1, 64), sc.view(np.uint8), d.view(np.uint8).reshape(-1, 2)], axis=1)
    return out.reshape(rows, -1)


def _f16(b: np.ndarray, at: int) -> float:
    return float(np.frombuffer(bytes(b[at:at + 2]), dtype=np.float16)[0])


def _scale_min_k4(j: int, q: np.ndarray) -> tuple[int, int]:
    if j < 4:
        return int(q[j]) & 63, int(q[j + 4]) & 63
    return (int(q[j + 4]) & 0xF) | ((int(q[j - 4]) >> 6) << 4), (int(q[j + 4]) >> 4) | ((int(q[j]) >> 6) << 4)


def dequantize_q4_k_ref(data: np.ndarray) -> np.ndarray:
    """ggml's dequantize_row_q4_K over every block of ``data`` (uint8)."""
    blocks = np.asarray(data, dtype=np.uint8).reshape(-1, Q4_K_BYTES)
    out = []
    for blk in blocks:
        d, dmin, scales, q = _f16(blk, 0), _f16(blk, 2), blk[4:16], blk[16:]
        y, qi, is_ = [], 0, 0
        for _ in range(0, QK, 64):
            sc, m = _scale_min_k4(is_, scales)
            d1, m1 = d * sc, dmin * m
            sc, m = _scale_min_k4(is_ + 1, scales)
            d2, m2 = d * sc, dmin * m
            y += [d1 * (int(q[qi + l]) & 0xF) - m1 for l in range(32)]
            y += [d2 * (int(q[qi + l]) >> 4) - m2 for l in range(32)]
            qi += 32
            is_ += 2
        out += y
    return np.array(out, dtype=np.float32)


def dequantize_q6_k_ref(data: np.ndarray) -> np.ndarray:
    """ggml's dequantize_row_q6_K over every block of ``data`` (uint8)."""
    blocks = np.asarray(data, dtype=np.uint8).reshape(-1, Q6_K_BYTES)
    out = []
    for blk in blocks:
        ql, qh, sc, d = blk[0:128], blk[128:192], blk[192:208].view(np.int8), _f16(blk, 208)
        y = [0.0] * QK
        for n in range(2):
            o, l0, h0, s0 = 128 * n, 64 * n, 32 * n, 8 * n
            for l in range(32):
                is_ = l // 16
                q1 = ((int(ql[l0 + l]) & 0xF) | (((int(qh[h0 + l]) >> 0) & 3) << 4)) - 32
                q2 = ((int(ql[l0 + l + 32]) & 0xF) | (((int(qh[h0 + l]) >> 2) & 3) << 4)) - 32
                q3 = ((int(ql[l0 + l]) >> 4) | (((int(qh[h0 + l]) >> 4) & 3) << 4)) - 32
                q4 = ((int(ql[l0 + l + 32]) >> 4) | (((int(qh[h0 + l]) >> 6) & 3) << 4)) - 32
                y[o + l] = d * int(sc[s0 + is_]) * q1
                y[o + l + 32] = d * int(sc[s0 + is_ + 2]) * q2
                y[o + l + 64] = d * int(sc[s0 + is_ + 4]) * q3
                y[o + l + 96] = d * int(sc[s0 + is_ + 6]) * q4
        out += y
    return np.array(out, dtype=np.float32)
