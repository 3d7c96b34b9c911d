"""``convert --check``: the figures of a conversion, kept in the folder and shown by ``models info``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("coremltools")

from anechat.engines.coreml.convert.calibration import FP16_MAX, activation_peaks, calibration_ids, fp16_warnings  # noqa: E402
from anechat.engines.coreml.convert.check import QUALITY_FILE, check_conversion, folder_bytes, quality_lines, read_quality  # noqa: E402
from anechat.engines.coreml.mil.plan_cache import CACHE_DIR  # noqa: E402
from anechat.engines.coreml.convert.source import load_weights, read_spec  # noqa: E402

pytestmark = pytest.mark.coreml


@pytest.fixture(scope="module")
def checked_lut6(tiny_coreml_lut6_dir, tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("checked") / "tiny-lut6"
    shutil.copytree(tiny_coreml_lut6_dir, folder, ignore=shutil.ignore_patterns(CACHE_DIR))
    return folder, check_conversion(folder, tiny_model_dir)


def test_check_measures_agreement_perplexity_and_size_and_keeps_them_in_the_folder(checked_lut6):
    folder, figures = checked_lut6
    assert figures["top1_agreement"] >= 0.75  # the random tiny model has near-tied logits; 6-bit tables keep most choices
    assert figures["perplexity"] > 1 and figures["perplexity_source_fp32"] > 1
    assert abs(figures["perplexity"] / figures["perplexity_source_fp32"] - 1) < 0.1
    # the tiny model's tables and package files outweigh its weights, so only the bookkeeping is checked here
    assert figures["size_bytes"] == folder_bytes(folder) - (folder / QUALITY_FILE).stat().st_size  # the load cache is not counted
    assert figures["size_vs_fp16"] == round(figures["size_bytes"] / figures["fp16_size_bytes"], 3)
    assert "fp16" in figures["runtime"]  # the executor rounded activations as the Neural Engine would
    assert read_quality(folder) == json.loads((folder / QUALITY_FILE).read_text())
    labels = [label for label, _ in quality_lines(figures)]
    assert labels[:4] == ["top-1 agreement", "perplexity", "size vs fp16", "fp16 preflight"]


@pytest.mark.parametrize(
    "options, floor",
    [
        (dict(lut_ffn=4, lut_lmhead=4, lut_embeddings=4, lut_ffn_down=4, lut_ffn_last=4), 0.5),
        (dict(lut_ffn=8, lut_lmhead=8, lut_embeddings=8), 0.9),
        (dict(lut_ffn=6, lut_lmhead=8, lut_embeddings=8), 0.75),  # the recommended recipe
        (dict(lut_ffn=6, lut_lmhead=6, error_feedback=False, calibrate=False), 0.75),  # plain k-means, nearest entries
    ],
    ids=["lut4-uniform", "lut8", "recommended", "lut6-uncalibrated"],
)
def test_each_quantization_option_converts_runs_and_keeps_most_of_the_tiny_models_choices(tiny_model_dir, tmp_path, options, floor):
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml

    folder = convert_to_coreml(tiny_model_dir, tmp_path / "m", CoreMLConvertOptions(context_length=64, batch_size=16, **options))
    figures = check_conversion(folder, tiny_model_dir)
    assert figures["top1_agreement"] >= floor
    assert abs(figures["perplexity"] / figures["perplexity_source_fp32"] - 1) < 0.15


@pytest.fixture(scope="module")
def tiny_lut4_mixed(tiny_model_dir, tmp_path_factory):
    """The tiny llama with a 4-bit FFN and nothing else said: the mixed recipe."""
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml

    options = CoreMLConvertOptions(context_length=64, batch_size=16, lut_ffn=4, lut_lmhead=4)
    return convert_to_coreml(tiny_model_dir, tmp_path_factory.mktemp("mixed") / "tiny-lut4", options)


def test_a_4_bit_ffn_keeps_its_down_k_and_v_projections_at_6_bits_and_its_last_layer_at_8(tiny_lut4_mixed, tiny_model_dir):
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_mil
    from coremltools.models.utils import _try_get_weights_dir_path

    from anechat.catalog.coreml_meta import detect_coreml

    package = str(tiny_lut4_mixed / "llama_FFN_PF_lut4_chunk_01of01.mlpackage")
    spec = ct.utils.load_spec(package)
    program = load_mil(spec, spec.specificationVersion, _try_get_weights_dir_path(package))
    tables = sorted((op.lut.val.shape[-2], op.outputs[0].shape[:2]) for op in program.functions["infer"].find_ops(op_type="constexpr_lut_to_dense"))
    # two layers; q/o (64x64), gate/up (128x64) and down (64x128) are palettized, k/v (32x64)
    # are too small here. Layer 0: 16-entry tables but 64 for its down projection; layer 1
    # (the last): 256.
    layer = [(64, 64), (64, 64), (128, 64), (128, 64)]
    assert tables == sorted([(16, s) for s in layer] + [(64, (64, 128))] + [(256, s) for s in layer + [(64, 128)]])
    meta = yaml.safe_load((tiny_lut4_mixed / "meta.yaml").read_text())["model_info"]["parameters"]
    assert (meta["lut_ffn"], meta["lut_ffn_down"], meta["lut_ffn_last"]) == (4, 6, 8)
    assert detect_coreml(tiny_lut4_mixed).quantization == "LUT4 (down/k/v LUT6, last layer LUT8, embeddings fp16)"
    assert check_conversion(tiny_lut4_mixed, tiny_model_dir)["top1_agreement"] >= 0.5


def test_every_weight_of_a_converted_ffn_finds_what_it_saw_on_the_calibration_text(tiny_coreml_dir, tiny_model_dir):
    # the palettizer looks inputs up by weight content and shape; coremltools' passes leave the
    # (out, in, 1, 1) conv weights as (out, in, 1) constants, which must still match
    import coremltools as ct
    from coremltools.converters.mil.frontend.milproto.load import load as load_mil
    from coremltools.models.utils import _try_get_weights_dir_path

    from anechat.engines.coreml.convert.calibration import layer_inputs
    from anechat.engines.coreml.convert.palettize import weight_key
    from anechat.engines.coreml.convert.source import with_vocab_from_weights

    spec = with_vocab_from_weights(read_spec(tiny_model_dir), tiny_model_dir)
    inputs = layer_inputs(spec, load_weights(tiny_model_dir), calibration_ids(tiny_model_dir, 64), [(0, spec.num_layers)], [spec.vocab_size])
    weights = []
    for package in map(str, sorted(tiny_coreml_dir.glob("llama_FFN_PF_chunk_*.mlpackage"))):
        mil = ct.utils.load_spec(package)
        program = load_mil(mil, mil.specificationVersion, _try_get_weights_dir_path(package))
        weights += [op.weight.op.outputs[0].val for op in program.functions["infer"].find_ops(op_type="conv")]
    assert len(weights) == 7 * spec.num_layers
    assert all(weight_key(w) in inputs for w in weights)


def test_projections_that_read_one_tensor_share_one_record_of_it(tiny_model_dir, monkeypatch):
    # q/k/v read the same normed input, gate/up another: one Gram matrix each, so the
    # palettizer builds one Cholesky factor for each group, not one per weight; the text runs
    # in segments, and every segment adds to the same records
    from anechat.engines.coreml.convert import calibration
    from anechat.engines.coreml.convert.palettize import weight_key
    from anechat.engines.coreml.convert.source import with_vocab_from_weights

    monkeypatch.setattr(calibration, "SEGMENT_TOKENS", 24)
    spec = with_vocab_from_weights(read_spec(tiny_model_dir), tiny_model_dir)
    weights = load_weights(tiny_model_dir)
    inputs = calibration.layer_inputs(spec, weights, calibration_ids(tiny_model_dir, 64), [(0, spec.num_layers)], [spec.vocab_size])
    assert {seen.tokens for seen in inputs.values()} == {64}  # three segments: 24 + 24 + 16 tokens

    def recorded(layer: int, projection: str):
        w = weights[f"model.layers.{layer}.{projection}.weight"]
        return inputs[weight_key(w.astype(np.float16).reshape(w.shape[0], -1, 1, 1))]

    for layer in range(spec.num_layers):
        q, k, v, o = (recorded(layer, f"self_attn.{p}_proj") for p in "qkvo")
        gate, up, down = (recorded(layer, f"mlp.{p}_proj") for p in ("gate", "up", "down"))
        assert q is k is v and gate is up
        assert len({id(q), id(o), id(gate), id(down)}) == 4


def test_mixed_recipes_give_the_sensitive_weights_more_bits_unless_told_otherwise(tiny_model_dir):
    from anechat.convert.jobs import ConvertRequest, default_out
    from anechat.engines.coreml.convert import CoreMLConvertOptions
    from anechat.engines.errors import InvalidParameter

    assert CoreMLConvertOptions(lut_ffn=4).ffn_bits() == {"rest": 4, "down": 6, "last": 8}
    assert CoreMLConvertOptions(lut_ffn=6).ffn_bits() == {"rest": 6, "down": 6, "last": 8}
    assert CoreMLConvertOptions(lut_ffn=8).ffn_bits() == {"rest": 8, "down": 8, "last": 8}
    assert CoreMLConvertOptions(lut_ffn=4, lut_ffn_down=4, lut_ffn_last=4).ffn_bits() == {"rest": 4, "down": 4, "last": 4}  # uniform
    assert CoreMLConvertOptions().ffn_bits() == {}
    with pytest.raises(InvalidParameter, match="lut_ffn_last needs"):
        CoreMLConvertOptions(lut_ffn_last=6).check(read_spec(tiny_model_dir))
    # the default folder name tells a conversion with its own mixed bits from the default recipe
    assert default_out("m", ConvertRequest(to="coreml", lut_ffn=4)).name == "m-coreml-ctx512-lut4"
    assert default_out("m", ConvertRequest(to="coreml", lut_ffn=4, lut_ffn_down=4, lut_ffn_last=4)).name == "m-coreml-ctx512-lut4-down4-last4"


def test_the_down_role_holds_the_down_k_and_v_projections_and_the_last_layer_is_all_its_own(tiny_model_dir):
    # measured on SmolLM2-135M at 4 bits: per byte, the MLP's down projections and the
    # attention's k and v projections lose the most (see options.DOWN_PROJECTION_BITS)
    from anechat.engines.coreml.convert.palettize import weight_key
    from anechat.engines.coreml.convert.sensitive import projection_roles
    from anechat.engines.coreml.convert.source import with_vocab_from_weights

    spec = with_vocab_from_weights(read_spec(tiny_model_dir), tiny_model_dir)
    weights = load_weights(tiny_model_dir)
    roles = projection_roles(spec, weights)

    def role(layer: int, projection: str):
        w = weights[f"model.layers.{layer}.{projection}.weight"]
        return roles.get(weight_key(w.astype(np.float16).reshape(w.shape[0], -1, 1, 1)))

    first, last = 0, spec.num_layers - 1
    assert [role(first, p) for p in ("self_attn.k_proj", "self_attn.v_proj", "mlp.down_proj")] == ["down"] * 3
    assert [role(first, p) for p in ("self_attn.q_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj")] == [None] * 4
    assert {role(last, p) for p in ("self_attn.q_proj", "self_attn.k_proj", "mlp.up_proj", "mlp.down_proj")} == {"last"}


def test_models_info_shows_the_figures_of_a_checked_folder(checked_lut6, tmp_path):
    folder, figures = checked_lut6
    out = subprocess.run(
        [str(Path(sys.executable).parent / "anechat"), "models", "info", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert f"{figures['top1_agreement']:.1%}" in out.stdout and "perplexity" in out.stdout


def test_convert_check_prints_the_figures_of_what_it_just_wrote(tiny_model_dir, tmp_path):
    out_dir = tmp_path / "tiny-lut8"
    out = subprocess.run(
        [str(Path(sys.executable).parent / "anechat"), "convert", str(tiny_model_dir), "--to", "coreml", "--lut-ffn", "8",
         "--lut-lmhead", "none", "--context", "64", "--batch", "16", "--check", "-o", str(out_dir)],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_COLOR": "1", **{f"ANECHAT_{d}_DIR": str(tmp_path / d.lower()) for d in ("CONFIG", "DATA", "MODELS")}},
    )  # a home of its own: other tests must not find this conversion among the tiny model's variants
    assert out.returncode == 0, out.stderr
    figures = json.loads((out_dir / QUALITY_FILE).read_text())
    assert f"top-1 agreement: {figures['top1_agreement']:.1%} of {figures['positions']} positions" in out.stdout
    assert "perplexity: " in out.stdout and "size vs fp16: " in out.stdout


def test_a_damaged_quality_file_shows_nothing_and_breaks_nothing(tmp_path):
    (tmp_path / QUALITY_FILE).write_text("[1, 2")
    assert read_quality(tmp_path) is None
    assert quality_lines({"top1_agreement": "\x1b[31mred", "fp16_peak_activation": ["x"]}) == []


def test_fp16_preflight_reports_each_layer_and_warns_near_the_limit(tiny_model_dir):
    spec = read_spec(tiny_model_dir)
    peaks = activation_peaks(spec, load_weights(tiny_model_dir), calibration_ids(tiny_model_dir, 32))
    assert len(peaks) == spec.num_layers and all(0 < p < FP16_MAX for p in peaks)
    assert fp16_warnings([1.0, 0.5 * FP16_MAX]) == [f"layer 1: activations reach 32,752 (50% of the fp16 limit {FP16_MAX:,.0f})"]
    assert fp16_warnings(peaks) == []
