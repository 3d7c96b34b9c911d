"""One meta.yaml model for the engine, the converter and the catalog: it round-trips, and the
catalog and the engine give the same answer for the same folder — "6,4" LUTs, LUTs that are
not LUTs, and folders whose meta.yaml names ``X.mlmodelc`` where only ``X_lutN.mlpackage`` is."""

from __future__ import annotations

import shutil

import pytest
import yaml

from anechat.catalog.formats import detect
from anechat.engines.coreml.anemll import AnemllMeta, LayoutError, read_layout, read_meta, write_meta
from anechat.engines.errors import ModelFormatError
from model_folders import build_coreml_layout, rewrite_meta

EVERY_FIELD = AnemllMeta(
    context_length=1024, name="anemll-Llama-3.2-1B-ctx1024", version="0.3.5", description="two\nlines\n",
    license="MIT", framework="Core ML", architecture="qwen3", converter="anechat 1.0", batch_size=32,
    num_chunks=2, model_prefix="qwen", lut_embeddings=None, lut_ffn=6, lut_ffn_per_channel=4, lut_lmhead=8,
    lut_lmhead_per_channel=0, split_lm_head=16, lm_head_chunk_sizes=(100, 100, 56), vocab_size=256,
    state_length=2048, hidden_size=64, num_layers=4, embeddings="qwen_embeddings.mlmodelc",
    lm_head="qwen_lm_head_lut8.mlmodelc", ffn="qwen_FFN_PF_lut6_chunk_01of02.mlmodelc", prefill="qwen_pf.mlmodelc",
    argmax_in_model=True, sliding_window=512, update_mask_prefill=True, prefill_dynamic_slice=True,
)


def test_every_field_round_trips_through_meta_yaml(tmp_path):
    write_meta(tmp_path, EVERY_FIELD)
    assert read_meta(tmp_path) == EVERY_FIELD
    assert read_meta(tmp_path).path == tmp_path / "meta.yaml"


def test_older_spellings_read_into_the_same_record_and_are_written_the_0_3_5_way(tmp_path):
    params = {"context_length": 512, "lut_bits": 4, "lut_per_channel": 8, "num_logits": 8, "pf": "llama_pf.mlmodelc"}
    (tmp_path / "meta.yaml").write_text(yaml.safe_dump({"model_info": {"parameters": params}}))
    old = read_meta(tmp_path)
    assert (old.lut_embeddings, old.lut_ffn, old.lut_lmhead, old.lut_ffn_per_channel) == (4, 4, 4, 8)
    assert (old.split_lm_head, old.prefill) == (8, "llama_pf.mlmodelc")
    write_meta(tmp_path / ".", old)
    written = yaml.safe_load((tmp_path / "meta.yaml").read_text())["model_info"]["parameters"]
    assert written["lut_ffn"] == 4 and written["lut_ffn_per_channel"] == 8 and "lut_bits" not in written
    assert read_meta(tmp_path) == old


@pytest.mark.parametrize(
    "value, bits, per_channel",
    [("6,4", 6, 4), ("4,16", 4, 16), ("6,tensor", 6, 0), ("6,0", 6, 0), (6, 6, None), ("none", None, None), (False, None, None)],
)
def test_a_lut_is_bits_with_an_optional_channel_group(tmp_path, value, bits, per_channel):
    (tmp_path / "meta.yaml").write_text(yaml.safe_dump({"model_info": {"parameters": {"context_length": 64, "lut_ffn": value}}}))
    meta = read_meta(tmp_path)
    assert (meta.lut_ffn, meta.lut_ffn_per_channel) == (bits, per_channel)


# --- the catalog and the engine agree --------------------------------------------------------


def catalog_answer(folder):
    det = detect(folder)
    if det.format != "coreml":
        return "refused", det.reason
    return det.details["luts"], det.notes


def engine_answer(folder):
    try:
        layout = read_layout(folder)
    except LayoutError as exc:
        return "refused", exc.relative_to(folder)
    return layout.luts, layout.warnings


def test_a_per_channel_lut_string_means_its_bits_in_catalog_and_engine(tiny_model_dir, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "m", lut_ffn=6, parameters={"lut_ffn": "6,4"})
    assert catalog_answer(folder) == engine_answer(folder) == ({"embeddings": None, "ffn": 6, "lm_head": 6}, ())
    assert detect(folder).quantization == "LUT6 (embeddings fp16)"
    assert read_meta(folder).lut_ffn_per_channel == 4


@pytest.mark.parametrize("value", [32, 16, 5, "6,four", "lots"])
def test_a_lut_size_core_ml_has_not_is_refused_alike_with_the_valid_values(tiny_model_dir, tmp_path, value):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "m", parameters={"lut_ffn": value})
    refused, reason = catalog_answer(folder)
    assert (refused, reason) == engine_answer(folder)
    assert reason == f"meta.yaml: model_info.parameters.lut_ffn must be a bit count (1, 2, 3, 4, 6 or 8), optionally with its channel group as in \"6,4\", or none, got {value!r}"


def test_every_bad_key_is_named_in_one_line(tiny_model_dir, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "m", parameters={"lut_ffn": 32, "batch_size": -1})
    with pytest.raises(ModelFormatError) as err:
        read_layout(folder)
    line = str(err.value)
    assert "\n" not in line and str(folder / "meta.yaml") in line
    assert "lut_ffn must be a bit count" in line and "batch_size must be a positive integer, got -1" in line


def test_mlmodelc_named_but_only_the_lut_mlpackage_there_is_used_with_a_warning_alike(tiny_model_dir, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "m", lut_embeddings=4, compile_skipped=True)
    luts, warnings = engine_answer(folder)
    assert (luts, warnings) == catalog_answer(folder)
    assert luts == {"embeddings": 4, "ffn": 6, "lm_head": 6}
    assert warnings == (
        "meta.yaml names llama_embeddings.mlmodelc but only llama_embeddings_lut4 (LUT4) is here — using it "
        "(ANEMLL writes this when its compile step is skipped)",
        "meta.yaml names llama_lm_head.mlmodelc but only llama_lm_head_lut6 (LUT6) is here — using it "
        "(ANEMLL writes this when its compile step is skipped)",
    )
    assert detect(folder).quantization == "LUT6 (embeddings LUT4)"


def test_two_lut_variants_of_a_part_are_not_guessed_between(tiny_model_dir, tmp_path):
    folder = build_coreml_layout(tiny_model_dir, tmp_path / "m", compile_skipped=True)
    shutil.copytree(folder / "llama_lm_head_lut6.mlpackage", folder / "llama_lm_head_lut4.mlpackage")
    refused, reason = catalog_answer(folder)
    assert (refused, reason) == engine_answer(folder)
    assert reason.startswith("missing Core ML part llama_lm_head (.mlpackage or .mlmodelc)")


# --- real converted folders ----------------------------------------------------------------


@pytest.mark.coreml
def test_the_converters_meta_yaml_reads_back_and_writes_out_unchanged(tiny_coreml_lut6_dir, tmp_path):
    write_meta(tmp_path, read_meta(tiny_coreml_lut6_dir))
    assert yaml.safe_load((tmp_path / "meta.yaml").read_text()) == yaml.safe_load((tiny_coreml_lut6_dir / "meta.yaml").read_text())


@pytest.mark.coreml
def test_a_folder_as_anemll_writes_it_without_compiling_loads_and_generates_the_same(tiny_coreml_lut6_dir, tmp_path):
    pytest.importorskip("coremltools")
    from anechat.engines.base import SamplingParams
    from anechat.engines.coreml.engine import CoreMLEngine

    published = tmp_path / "published"
    shutil.copytree(tiny_coreml_lut6_dir, published)
    rewrite_meta(
        published, embeddings="llama_embeddings.mlmodelc", lut_embeddings="none", lm_head="llama_lm_head.mlmodelc",
        lut_lmhead="none", ffn="llama_FFN_PF_lut6.mlmodelc", lut_ffn="6,16", lut_ffn_per_channel=None,
        lut_embeddings_per_channel=None, lut_lmhead_per_channel=None,
    )

    def run(folder):
        engine = CoreMLEngine()
        session = engine.load(folder)
        events = list(session.generate_ids([1, 50, 60, 70], SamplingParams(max_tokens=8), ignore_eos=True))
        engine.unload()
        return session.info, [t for e in events[:-1] for t in e.token_ids]

    info, tokens = run(published)
    original_info, original_tokens = run(tiny_coreml_lut6_dir)
    assert tokens == original_tokens
    assert info.quantization == original_info.quantization == "embeddings LUT6 ffn LUT6 lm_head LUT6"
    assert len(info.extra["warnings"]) == 2 and original_info.extra["warnings"] == []
    assert list(detect(published).notes) == info.extra["warnings"]
