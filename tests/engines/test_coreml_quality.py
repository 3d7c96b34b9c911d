"""``convert --check``: the figures of a conversion, kept in the folder and shown by ``models info``."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
        (dict(lut_ffn=4, lut_lmhead=4, lut_embeddings=4), 0.5),
        (dict(lut_ffn=8, lut_lmhead=8, lut_embeddings=8), 0.9),
        (dict(lut_ffn=6, lut_lmhead=8, lut_embeddings=8), 0.75),  # the recommended recipe
        (dict(lut_ffn=6, lut_lmhead=6, error_feedback=False, calibrate=False), 0.75),  # plain k-means, nearest entries
    ],
    ids=["lut4", "lut8", "recommended", "lut6-uncalibrated"],
)
def test_each_quantization_option_converts_runs_and_keeps_most_of_the_tiny_models_choices(tiny_model_dir, tmp_path, options, floor):
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml

    folder = convert_to_coreml(tiny_model_dir, tmp_path / "m", CoreMLConvertOptions(context_length=64, batch_size=16, **options))
    figures = check_conversion(folder, tiny_model_dir)
    assert figures["top1_agreement"] >= floor
    assert abs(figures["perplexity"] / figures["perplexity_source_fp32"] - 1) < 0.15


def test_models_info_shows_the_figures_of_a_checked_folder(checked_lut6, tmp_path):
    folder, figures = checked_lut6
    out = subprocess.run(
        [str(Path(sys.executable).parent / "anechat"), "models", "info", str(folder)], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert f"{figures['top1_agreement']:.1%}" in out.stdout and "perplexity" in out.stdout


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
