"""The converter's own llama (1x1 convs, layer_norm RMSNorm, rope tables, GQA over a KV state)
computes what a plain float32 llama computes, and its LUT k-means is as good as coremltools'."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("coremltools")

from anechat.engines.coreml.convert.ane_llama import Embeddings, FFNChunk, LMHead  # noqa: E402
from anechat.engines.coreml.convert.options import lm_head_split  # noqa: E402
from anechat.engines.coreml.convert.kmeans import kmeans_lut, kmeans_rows  # noqa: E402
from anechat.engines.coreml.convert.palettize import LUTPalettizer  # noqa: E402
from anechat.engines.coreml.convert.to_coreml import chunk_ranges  # noqa: E402
from anechat.engines.modeling.rope import inverse_frequencies, rope_tables  # noqa: E402
from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights  # noqa: E402

# --- a plain float32 llama, written from the paper's equations, no caches and no tricks ---


def reference_logits(spec, w, ids: list[int]) -> np.ndarray:
    """Logits (T, vocab) for every position of ``ids``."""
    hd, T = spec.head_dim, len(ids)
    x = w["model.embed_tokens.weight"][ids].astype(np.float64)
    cos, sin = rope_tables(spec, T)

    def rms(v, g):
        return v / np.sqrt((v * v).mean(-1, keepdims=True) + spec.rms_norm_eps) * g

    def rotate(v):
        return np.concatenate([-v[..., hd // 2 :], v[..., : hd // 2]], -1)

    for layer in range(spec.num_layers):
        p = f"model.layers.{layer}."
        a = rms(x, w[p + "input_layernorm.weight"])
        q, k, v = (
            (a @ w[p + f"self_attn.{n}_proj.weight"].T).reshape(T, -1, hd).transpose(1, 0, 2) for n in "qkv"
        )
        q, k = q * cos + rotate(q) * sin, k * cos + rotate(k) * sin
        group = spec.num_heads // spec.num_kv_heads
        k, v = np.repeat(k, group, 0), np.repeat(v, group, 0)
        scores = q @ k.transpose(0, 2, 1) / np.sqrt(hd) + np.triu(np.full((T, T), -np.inf), 1)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        x = x + (probs @ v).transpose(1, 0, 2).reshape(T, -1) @ w[p + "self_attn.o_proj.weight"].T
        m = rms(x, w[p + "post_attention_layernorm.weight"])
        gate, up = m @ w[p + "mlp.gate_proj.weight"].T, m @ w[p + "mlp.up_proj.weight"].T
        x = x + (gate / (1 + np.exp(-gate)) * up) @ w[p + "mlp.down_proj.weight"].T
    return rms(x, w["model.norm.weight"]) @ w["lm_head.weight"].T


# --- the ANE parts driven the way the runtime drives the Core ML packages ---

CTX, BATCH = 32, 4


class PartsRunner:
    """Embeddings -> FFN chunks (one shared KV state) -> LM head, with the layout's inputs."""

    def __init__(self, spec, weights, dtype, chunks=2):
        self.dtype = dtype
        self.embeddings = Embeddings(spec, weights, dtype)
        self.chunks = [FFNChunk(spec, weights, a, b, CTX, dtype) for a, b in chunk_ranges(spec.num_layers, chunks)]
        shared = self.chunks[0].kv_cache
        for chunk in self.chunks[1:]:
            chunk.register_buffer("model_model_kv_cache_0", shared)  # one state object for all chunks
        self.head = LMHead(spec, weights, lm_head_split(spec.vocab_size, 8), dtype)

    def mask(self, start: int, rows: int):
        m = np.full((rows, CTX), -np.inf, np.float32)
        for r in range(rows):
            m[r, : start + r + 1] = 0
        return torch.tensor(m, dtype=self.dtype).reshape(1, 1, rows, CTX)

    def _run(self, ids, start, mode):
        rows = len(ids)
        h = self.embeddings(torch.tensor([ids], dtype=torch.int32))
        for chunk in self.chunks:
            chunk.mode = mode
            h = chunk(h, torch.arange(start, start + rows, dtype=torch.int32), self.mask(start, rows),
                      torch.tensor([start], dtype=torch.int32))
        return h

    @torch.no_grad()
    def prefill(self, ids, start=0):
        """Batches of BATCH tokens, the last one padded (padding is masked and overwritten later)."""
        for pos in range(start, start + len(ids), BATCH):
            batch = list(ids[pos - start : pos - start + BATCH])
            self._run(batch + [0] * (BATCH - len(batch)), pos, "prefill")

    @torch.no_grad()
    def infer(self, token, pos):
        return torch.cat(self.head(self._run([token], pos, "infer")), -1).float().numpy().reshape(-1)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    spec = with_vocab_from_weights(read_spec(tiny_model_dir), tiny_model_dir)
    return spec, load_weights(tiny_model_dir)


IDS = [5, 17, 200, 33, 7, 120, 3, 99, 42, 8, 250, 61]


@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.float16, 5e-2)])
def test_prefill_then_one_token_at_a_time_gives_the_reference_logits(tiny, dtype, tolerance):
    spec, weights = tiny
    expected = reference_logits(spec, weights, IDS)
    runner = PartsRunner(spec, weights, dtype)
    runner.prefill(IDS[:6])  # 6 tokens: one full batch of 4 and a padded one
    got = np.stack([runner.infer(IDS[t], t) for t in range(6, len(IDS))])
    assert np.abs(got - expected[6:]).max() < tolerance * np.abs(expected).max()
    assert (got.argmax(-1) == expected[6:].argmax(-1)).all()


def test_rewinding_the_cache_position_overwrites_the_old_tail(tiny):
    """An edited conversation: keep 5 cached tokens, write different ones after them."""
    spec, weights = tiny
    runner = PartsRunner(spec, weights, torch.float32)
    runner.prefill(IDS[:10])
    edited = IDS[:5] + [11, 12, 13]
    runner.prefill(edited[5:7], start=5)  # overwrites slots 5..8 (one padded slot)
    got = runner.infer(edited[7], 7)
    expected = reference_logits(spec, weights, edited)[7]
    assert np.abs(got - expected).max() < 1e-4 * np.abs(expected).max()


def test_last_chunk_prefill_returns_only_the_first_position(tiny):
    spec, weights = tiny
    runner = PartsRunner(spec, weights, torch.float32)
    last = runner.chunks[-1]
    last.mode = "prefill"
    h = torch.zeros((1, BATCH, spec.hidden_size))
    out = last(h, torch.arange(BATCH, dtype=torch.int32), runner.mask(0, BATCH), torch.tensor([0], dtype=torch.int32))
    assert tuple(out.shape) == (1, 1, spec.hidden_size)


def test_kv_state_layout_keys_at_layer_values_after_all_layers(tiny):
    spec, weights = tiny
    runner = PartsRunner(spec, weights, torch.float32)
    runner.prefill(IDS[:3])
    cache = runner.chunks[0].kv_cache
    assert tuple(cache.shape) == (2 * spec.num_layers, spec.num_kv_heads, CTX, spec.head_dim)
    written = cache.abs().sum(dim=(1, 3)) > 0  # (2L, CTX)
    assert written[:, :BATCH].all() and not written[:, BATCH:].any()


# --- rotary tables ---


def test_llama3_rope_scaling_matches_transformers():
    transformers = pytest.importorskip("transformers")
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from anechat.engines.modeling.spec import ModelSpec

    scaling = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 8192}
    spec = ModelSpec(name="llama-3.2-1b-shape", hidden_size=2048, intermediate_size=8192, num_layers=16,
                     num_heads=32, num_kv_heads=8, head_dim=64, vocab_size=128256, rms_norm_eps=1e-5,
                     rope_theta=500000.0, rope_scaling=scaling, tie_word_embeddings=True)
    config = transformers.LlamaConfig(hidden_size=2048, num_attention_heads=32, head_dim=64, rope_theta=500000.0,
                                      max_position_embeddings=131072, rope_scaling=dict(scaling))
    expected, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    ours = inverse_frequencies(spec)
    np.testing.assert_allclose(ours, expected.numpy(), rtol=1e-6)
    plain = inverse_frequencies(ModelSpec(**{**spec.__dict__, "rope_scaling": None}))
    # high frequencies untouched, the lowest divided by the factor, a blend between
    assert ours[0] == plain[0] and ours[-1] == pytest.approx(plain[-1] / 32.0, rel=1e-6)
    assert ((ours < plain) & (ours > plain / 32.0)).any()


# --- LUT k-means ---


@pytest.mark.parametrize("nbits", [4, 6])
def test_kmeans_tables_are_about_as_good_as_coremltools_and_deterministic(nbits):
    from coremltools.models.neural_network.quantization_utils import _get_kmeans_lookup_table_and_weight

    rng = np.random.default_rng(3)
    # a normal and a heavy-tailed (Student t, 3 d.o.f.) group of 4096 values
    for values, slack in ((rng.standard_normal(4096) * 0.05, 1.15), (rng.standard_t(3, 4096) * 0.05, 1.6)):
        values = values.astype(np.float16).reshape(16, 256, 1, 1)
        lut, idx = kmeans_lut(values, nbits)
        assert lut.dtype == np.float16 and lut.shape == (1 << nbits,) and idx.dtype == np.uint8
        ours = np.mean((lut[idx].astype(np.float64) - values.reshape(-1)) ** 2)
        ref_lut, ref_idx = _get_kmeans_lookup_table_and_weight(nbits, values.reshape(-1, 1), cluster_dim=1, vector_axis=0)
        theirs = np.mean((ref_lut.reshape(-1)[ref_idx].astype(np.float16).astype(np.float64) - values.reshape(-1)) ** 2)
        assert ours <= slack * theirs
        again = kmeans_lut(values.copy(), nbits)
        assert np.array_equal(again[0], lut) and np.array_equal(again[1], idx)


def _optimal_mse(values: np.ndarray, k: int) -> float:
    """The least mean square error of any k-entry table for ``values`` (1-D k-means solved
    exactly by dynamic programming over the sorted values)."""
    v = np.sort(values.astype(np.float64))
    n = len(v)
    s1, s2 = np.concatenate([[0.0], np.cumsum(v)]), np.concatenate([[0.0], np.cumsum(v * v)])
    cost = np.full((n + 1, n + 1), np.inf)  # cost[i, j]: one centre for v[i:j]
    for i in range(n):
        j = np.arange(i + 1, n + 1)
        cost[i, j] = (s2[j] - s2[i]) - (s1[j] - s1[i]) ** 2 / (j - i)
    best = cost[0].copy()
    for _ in range(k - 1):
        best = np.min(best[:, None] + cost, axis=0)
    return float(best[n] / n)


@pytest.mark.parametrize("nbits, slack", [(4, 1.3), (6, 1.8)])  # Lloyd steps stop in local optima: measured 1.13 and 1.44 on average
def test_per_row_tables_come_close_to_the_best_possible_table(nbits, slack):
    # rows like a projection's (fp16 values, so many repeat; heavy tails), one table each
    rng = np.random.default_rng(11)
    rows = (rng.standard_t(4, (4, 400)) * 0.02).astype(np.float16).astype(np.float64)
    centers, index = kmeans_rows(rows, nbits)
    for row, c, i in zip(rows, centers, index):
        ours = np.mean((c[i] - row) ** 2)
        assert len(np.unique(c)) == 1 << nbits  # no entry wasted on a repeated value
        assert ours <= slack * _optimal_mse(row, 1 << nbits)


def test_kmeans_assigns_every_value_to_its_nearest_centre_in_every_row():
    rng = np.random.default_rng(5)
    values = rng.standard_normal((6, 3000)) * rng.uniform(0.01, 3, (6, 1))
    centers, index = kmeans_rows(values, 4)
    nearest = np.abs(values[:, :, None] - centers[:, None, :]).argmin(axis=2)
    assert np.array_equal(index, nearest)
    assert (np.diff(centers, axis=1) >= 0).all()


def test_weighted_kmeans_spends_its_error_on_the_unimportant_columns():
    rng = np.random.default_rng(6)
    # the important columns hold small values, the others a wide spread
    values = np.concatenate([rng.uniform(-0.3, 0.3, (4, 512)), rng.standard_normal((4, 512)) * 3], axis=1)
    importance = np.concatenate([np.full(512, 100.0), np.full(512, 0.01)])  # the first half matters
    plain_c, plain_i = kmeans_rows(values, 3)
    weighted_c, weighted_i = kmeans_rows(values, 3, importance[None, :])

    def error(c, i, cols):
        return np.mean((np.take_along_axis(c, i.astype(np.int64), axis=1) - values)[:, cols] ** 2)

    important = slice(0, 512)
    assert error(weighted_c, weighted_i, important) < 0.5 * error(plain_c, plain_i, important)


def test_palettizer_reuses_tables_for_weights_it_has_seen_and_scales_each_channel():
    palettizer = LUTPalettizer(4, group_size=4)
    weight = (np.linspace(-1, 1, 8 * 512).reshape(8, 512, 1, 1) * np.arange(1, 9).reshape(8, 1, 1, 1)).astype(np.float16)
    index, lut, scale = palettizer.tables(weight)
    again = palettizer.tables(weight.copy())
    assert palettizer.computed == 1 and palettizer.reused == 1
    assert all(np.array_equal(a, b) for a, b in zip((index, lut, scale), again))
    assert index.shape == weight.shape and lut.shape == (2, 16) and scale.shape == (8,)
    restored = lut.astype(np.float32)[np.arange(8)[:, None] // 4, index.reshape(8, -1)] * scale.astype(np.float32)[:, None]
    assert np.abs(restored - weight.reshape(8, -1)).max() <= 0.07 * np.abs(weight).max(axis=(1, 2, 3)).max()


def test_error_feedback_rounding_cuts_the_output_error_on_correlated_inputs():
    from anechat.engines.coreml.convert.feedback import Factor, round_with_feedback

    rng = np.random.default_rng(7)
    out, cols, group = 64, 96, 8
    weight = rng.standard_normal((out, cols))
    inputs = rng.standard_normal((400, cols)) * np.exp(rng.standard_normal(cols))
    inputs[:, :16] += 2 * inputs[:, 16:32]  # correlated channels, as activations are
    centers, nearest = kmeans_rows(weight.reshape(out // group, -1), 4)
    index = round_with_feedback(weight, centers, group, Factor(inputs.T @ inputs / len(inputs)))
    assert index.shape == (out, cols) and index.dtype == np.uint8 and index.max() < 16
    table = np.repeat(centers, group, axis=0)

    def output_error(idx):
        return np.linalg.norm((np.take_along_axis(table, idx.astype(np.int64), axis=1) - weight) @ inputs.T)

    assert output_error(index) < 0.9 * output_error(nearest.reshape(out, cols))


def test_palettizer_with_calibration_inputs_keeps_the_layer_output_closer():
    rng = np.random.default_rng(8)
    weight = rng.standard_normal((32, 64, 1, 1)).astype(np.float16)
    x = (rng.standard_normal((300, 64)) * np.exp(rng.standard_normal(64))).astype(np.float32)
    import torch

    from anechat.engines.coreml.convert.calibration import InputGram
    from anechat.engines.coreml.convert.palettize import weight_key

    seen = InputGram(64)
    seen.add(torch.from_numpy(x[:150]))  # the calibration text runs in segments; their Gram matrices add up
    seen.add(torch.from_numpy(x[150:]))

    def output_error(palettizer):
        index, lut, scale = palettizer.tables(weight)
        restored = lut.astype(np.float32)[np.arange(32)[:, None] // 4, index.reshape(32, -1)] * scale.astype(np.float32)[:, None]
        return np.linalg.norm((restored - weight.reshape(32, -1).astype(np.float32)) @ x.T)

    plain = output_error(LUTPalettizer(4, group_size=4))
    calibrated = output_error(LUTPalettizer(4, group_size=4, inputs={weight_key(weight): seen}))
    assert calibrated < 0.8 * plain


def test_a_group_with_no_more_values_than_table_entries_is_palettized_exactly():
    from anechat.engines.coreml.convert.kmeans import kmeans_rows

    values = np.random.default_rng(3).normal(size=(4, 200))  # 8 bits: 256 entries for 200 values
    centers, index = kmeans_rows(values, 8)
    assert np.array_equal(np.take_along_axis(centers, index.astype(np.int64), axis=1), values)
