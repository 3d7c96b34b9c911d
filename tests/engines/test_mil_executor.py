"""The MIL executor runs saved Core ML packages with numpy and computes what the source computed.

Each test converts a small torch module with coremltools, saves the ``.mlpackage``,
loads it back with the executor (never through torch) and compares outputs.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ct = pytest.importorskip("coremltools")

from anechat.engines.coreml.mil import MILModel, UnsupportedOp  # noqa: E402
from anechat.engines.errors import ModelFormatError  # noqa: E402

pytestmark = pytest.mark.coreml


def save_converted(module, examples: dict, path, *, states=None, fp16=False, outputs=("y",)) -> MILModel:
    """Trace ``module`` on ``examples`` (name -> tensor), convert, save to ``path``, load with the executor."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module.eval(), tuple(examples.values()))
        inputs = [ct.TensorType(name=n, shape=t.shape, dtype=np.int32 if t.dtype == torch.int32 else np.float32) for n, t in examples.items()]
        mlmodel = ct.convert(
            traced,
            inputs=inputs,
            outputs=[ct.TensorType(name=n) for n in outputs],
            states=states,
            convert_to="mlprogram",
            minimum_deployment_target=ct.target.macOS15,
            compute_precision=ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32,
            skip_model_load=True,
        )
    mlmodel.save(str(path))
    return MILModel(path)


def run_both(module, examples: dict, tmp_path, **kw):
    model = save_converted(module, examples, tmp_path / "m.mlpackage", **kw)
    got = model.predict({n: t.numpy() for n, t in examples.items()})["y"]
    with torch.no_grad():
        want = module(*examples.values()).numpy()
    return model, got, want


class Linear(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = torch.nn.Linear(16, 8)

    def forward(self, x):
        return self.fc(x)


class Pointwise(torch.nn.Module):
    """A linear layer as a 1x1 conv over (B, C, 1, S), the way ANE models are written."""

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(32, 24, 1, bias=True)

    def forward(self, x):
        return self.conv(x)


class SpatialConv(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)

    def forward(self, x):
        return self.conv(x)


class Norms(torch.nn.Module):
    """layer_norm, softmax and silu."""

    def __init__(self):
        super().__init__()
        self.ln = torch.nn.LayerNorm(12)

    def forward(self, x):
        return torch.softmax(torch.nn.functional.silu(self.ln(x)), dim=-1)


class RMSNormTrick(torch.nn.Module):
    """RMSNorm as layer_norm over [x, -x], as the converter writes it."""

    def forward(self, x):
        doubled = torch.cat([x, -x], dim=-1)
        return torch.nn.functional.layer_norm(doubled, (doubled.shape[-1],), eps=1e-5)[..., : x.shape[-1]]


class Attention(torch.nn.Module):
    """Batched matmuls with a transposed operand, a mask and a softmax."""

    def forward(self, q, k):
        scores = torch.matmul(q, k.transpose(-1, -2)) / 4.0
        mask = torch.triu(torch.full((5, 5), float("-inf")), diagonal=1)
        return torch.matmul(torch.softmax(scores + mask, dim=-1), k)


class Embed(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.table = torch.nn.Embedding(50, 8)

    def forward(self, ids):
        return self.table(ids)


class Gelu(torch.nn.Module):
    """gelu has no hand-written kernel: coremltools' own value_inference runs it."""

    def forward(self, x):
        return torch.nn.functional.gelu(x) + torch.cumsum(x, dim=-1)


@pytest.mark.parametrize(
    "module, examples",
    [
        (Linear(), {"x": torch.randn(3, 16)}),
        (Pointwise(), {"x": torch.randn(1, 32, 1, 7)}),
        (SpatialConv(), {"x": torch.randn(1, 4, 9, 9)}),
        (Norms(), {"x": torch.randn(2, 5, 12)}),
        (RMSNormTrick(), {"x": torch.randn(1, 3, 10)}),
        (Attention(), {"q": torch.randn(1, 2, 5, 16), "k": torch.randn(1, 2, 5, 16)}),
        (Embed(), {"ids": torch.tensor([[3, 0, 49, 7]], dtype=torch.int32)}),
        (Gelu(), {"x": torch.randn(2, 6)}),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, torch.nn.Module) else "",
)
def test_executor_matches_the_torch_module(module, examples, tmp_path):
    torch.manual_seed(0)
    _, got, want = run_both(module, examples, tmp_path)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_fp16_program_runs_in_fp32_close_to_the_source(tmp_path):
    torch.manual_seed(1)
    model, got, want = run_both(Pointwise(), {"x": torch.randn(1, 32, 1, 4)}, tmp_path, fp16=True)
    assert got.dtype == np.float32  # fp16 weights were cast once at load; the maths is fp32
    np.testing.assert_allclose(got, want, rtol=2e-2, atol=2e-3)


def test_one_by_one_conv_runs_as_a_matmul(tmp_path):
    model, _, _ = run_both(Pointwise(), {"x": torch.randn(1, 32, 1, 3)}, tmp_path)
    step_names = [fn.__name__ for fn, _, _ in model.plan().steps]
    assert "conv1x1" in step_names


class KVCache(torch.nn.Module):
    """Writes one (key) row per call at current_pos and attends over the whole cache."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kv_cache", torch.zeros(2, 1, 6, 4))

    def forward(self, x, current_pos):
        pos = current_pos[0]
        self.kv_cache[0:1, :, pos : pos + 1, :] = x
        self.kv_cache[1:2, :, pos : pos + 1, :] = 2 * x
        keys = self.kv_cache[0:1]
        values = self.kv_cache[1:2]
        return torch.matmul(torch.softmax(torch.matmul(x, keys.transpose(2, 3)), dim=-1), values)


def _state_type(shape):
    return [ct.StateType(wrapped_type=ct.TensorType(shape=shape, dtype=np.float16), name="kv_cache")]


def test_stateful_cache_update_matches_torch_over_several_calls(tmp_path):
    module = KVCache()
    examples = {"x": torch.randn(1, 1, 1, 4), "current_pos": torch.tensor([0], dtype=torch.int32)}
    model = save_converted(module, examples, tmp_path / "kv.mlpackage", states=_state_type((2, 1, 6, 4)))
    module.kv_cache.zero_()  # tracing ran forward once
    assert model.plan().in_place_updates == 2  # the KV write touches one row, not the whole cache
    state = model.make_states()
    for pos in (0, 1, 2, 5):
        x = torch.randn(1, 1, 1, 4)
        cp = torch.tensor([pos], dtype=torch.int32)
        got = model.predict({"x": x.numpy(), "current_pos": cp.numpy()}, state)["y"]
        with torch.no_grad():
            want = module(x, cp).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)  # the state itself is fp16 in Core ML
        np.testing.assert_allclose(state["kv_cache"].value, module.kv_cache.numpy(), rtol=1e-3, atol=1e-3)


class ReadBeforeWrite(torch.nn.Module):
    """Uses a copy of the cache taken BEFORE the update after it: the old contents must survive."""

    def __init__(self):
        super().__init__()
        self.register_buffer("kv_cache", torch.zeros(1, 1, 4, 2))

    def forward(self, x, current_pos):
        before = self.kv_cache[0:1].clone()
        self.kv_cache[0:1, :, current_pos[0] : current_pos[0] + 1, :] = x
        return before * 10 + self.kv_cache[0:1]


def test_values_read_before_a_state_write_keep_their_contents(tmp_path):
    module = ReadBeforeWrite()
    examples = {"x": torch.ones(1, 1, 1, 2), "current_pos": torch.tensor([0], dtype=torch.int32)}
    model = save_converted(module, examples, tmp_path / "rbw.mlpackage", states=_state_type((1, 1, 4, 2)))
    module.kv_cache.zero_()
    state = model.make_states()
    for pos, value in ((1, 3.0), (1, 5.0), (2, 7.0)):
        x = torch.full((1, 1, 1, 2), value)
        cp = torch.tensor([pos], dtype=torch.int32)
        got = model.predict({"x": x.numpy(), "current_pos": cp.numpy()}, state)["y"]
        with torch.no_grad():
            want = module(x, cp).numpy()
        np.testing.assert_allclose(got, want)


def test_palettized_weight_is_dequantized_once_at_load(tmp_path):
    from coremltools.optimize.coreml import OpPalettizerConfig, OptimizationConfig, palettize_weights

    module = Pointwise()
    with torch.no_grad():  # 16 distinct values: a 4-bit LUT represents the weight exactly
        levels = torch.linspace(-0.5, 0.5, 16)
        module.conv.weight.copy_(levels[torch.randint(0, 16, module.conv.weight.shape)])
    x = torch.randn(1, 32, 1, 5)
    save_converted(module, {"x": x}, tmp_path / "plain.mlpackage")
    mlmodel = ct.models.MLModel(str(tmp_path / "plain.mlpackage"), skip_model_load=True)
    config = OptimizationConfig(global_config=OpPalettizerConfig(mode="kmeans", nbits=4, weight_threshold=0, num_kmeans_workers=1))
    palettize_weights(mlmodel, config).save(str(tmp_path / "lut4.mlpackage"))
    lut = MILModel(tmp_path / "lut4.mlpackage")
    spec_ops = {op.type for f in lut.package.spec.mlProgram.functions.values() for b in f.block_specializations.values() for op in b.operations}
    assert any(t.startswith("constexpr_lut_to_dense") for t in spec_ops)  # the package really is palettized
    plan = lut.plan()
    assert not any(t.startswith("constexpr") for t in plan.op_counts)  # nothing left to dequantize per call
    got = lut.predict({"x": x.numpy()})["y"]
    with torch.no_grad():
        want = module(x).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_multifunction_package_runs_the_requested_function(tmp_path):
    torch.manual_seed(2)
    module = Pointwise()
    one = torch.randn(1, 32, 1, 1)
    four = torch.randn(1, 32, 1, 4)
    save_converted(module, {"x": one}, tmp_path / "one.mlpackage")
    save_converted(module, {"x": four}, tmp_path / "four.mlpackage")
    desc = ct.utils.MultiFunctionDescriptor()
    desc.add_function(str(tmp_path / "one.mlpackage"), "main", "infer")
    desc.add_function(str(tmp_path / "four.mlpackage"), "main", "prefill")
    desc.default_function_name = "infer"
    ct.utils.save_multifunction(desc, str(tmp_path / "both.mlpackage"))
    model = MILModel(tmp_path / "both.mlpackage")
    assert set(model.functions) == {"infer", "prefill"}
    with torch.no_grad():
        np.testing.assert_allclose(model.predict({"x": four.numpy()}, function="prefill")["y"], module(four).numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(model.predict({"x": one.numpy()})["y"], module(one).numpy(), rtol=1e-4, atol=1e-5)
    with pytest.raises(ModelFormatError, match="no function 'decode'"):
        model.plan("decode")


def test_an_op_it_cannot_run_is_refused_by_name(tmp_path):
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import types

    @mb.program(input_specs=[mb.TensorSpec(shape=(2, 3), dtype=types.fp32)], opset_version=ct.target.macOS15)
    def prog(x):
        noise = mb.random_uniform(shape=np.array([2, 3], dtype=np.int32), low=0.0, high=1.0, seed=1)
        return mb.add(x=x, y=noise, name="y")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ct.convert(prog, convert_to="mlprogram", minimum_deployment_target=ct.target.macOS15, skip_model_load=True).save(
            str(tmp_path / "noise.mlpackage")
        )
    model = MILModel(tmp_path / "noise.mlpackage")
    with pytest.raises(UnsupportedOp, match="random_uniform") as err:
        model.plan()
    assert "noise.mlpackage" in str(err.value)


def test_compiled_models_and_non_packages_are_refused_clearly(tmp_path):
    (tmp_path / "llama_embeddings.mlmodelc").mkdir()
    with pytest.raises(ModelFormatError, match="compiled Core ML model"):
        MILModel(tmp_path / "llama_embeddings.mlmodelc")
    broken = tmp_path / "broken.mlpackage"
    (broken / "Data" / "com.apple.CoreML").mkdir(parents=True)
    (broken / "Data" / "com.apple.CoreML" / "model.mlmodel").write_bytes(b"\x00not a protobuf\xff" * 4)
    with pytest.raises(ModelFormatError, match="broken.mlpackage"):
        MILModel(broken)


def test_fp16_mode_rounds_every_result_and_overflows_where_the_neural_engine_would(tmp_path):
    torch.manual_seed(4)
    module = Linear()
    with torch.no_grad():
        module.fc.weight.mul_(1000.0)
    x = torch.randn(1, 16) * 100  # outputs around 1e5..1e6: past fp16's 65504
    save_converted(module, {"x": x}, tmp_path / "big.mlpackage")
    exact = MILModel(tmp_path / "big.mlpackage").predict({"x": x.numpy()})["y"]
    rounded = MILModel(tmp_path / "big.mlpackage", fp16=True).predict({"x": x.numpy()})["y"]
    assert np.isfinite(exact).all() and np.abs(exact).max() > 65504
    assert np.isinf(rounded[np.abs(exact) > 65520]).all()
    small = np.abs(exact) < 60000
    np.testing.assert_allclose(rounded[small], exact[small], rtol=2e-3)
    assert np.array_equal(rounded[small], rounded[small].astype(np.float16).astype(np.float32))  # fp16 values
