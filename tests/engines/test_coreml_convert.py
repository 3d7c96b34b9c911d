"""`convert_to_coreml`: a float llama folder becomes an ANEMLL-layout Core ML folder
(meta.yaml, embeddings, FFN chunks with infer + prefill in one package, a split LM head),
optionally LUT-palettized, and a failed conversion leaves nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

ct = pytest.importorskip("coremltools")
pytest.importorskip("torch")

from coremltools.converters.mil.frontend.milproto.load import load as load_mil  # noqa: E402
from coremltools.models.utils import _try_get_weights_dir_path  # noqa: E402

from anechat.engines.coreml.convert import CoreMLConvertOptions, SUPPORTED_ARCHITECTURES, convert_to_coreml  # noqa: E402
from anechat.engines.errors import InvalidParameter, ModelFormatError, ModelNotFound  # noqa: E402

pytestmark = pytest.mark.coreml

FP16, INT32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT16, ct.proto.FeatureTypes_pb2.ArrayFeatureType.INT32
HIDDEN, LAYERS, KV_HEADS, HEAD_DIM, VOCAB = 64, 2, 2, 16, 384  # the tiny model (tests/tinymodel.py)


def params(folder: Path) -> dict:
    return yaml.safe_load((folder / "meta.yaml").read_text())["model_info"]["parameters"]


def arrays(features) -> dict:
    """name -> (shape, dtype) of a spec's inputs/outputs/states."""
    out = {}
    for f in features:
        t = f.type.stateType.arrayType if f.type.HasField("stateType") else f.type.multiArrayType
        out[f.name] = (tuple(t.shape), t.dataType)
    return out


def mil_program(package: Path):
    spec = ct.utils.load_spec(str(package))
    return load_mil(spec, spec.specificationVersion, _try_get_weights_dir_path(str(package)))


def weights_bytes(package: Path) -> int:
    return sum(f.stat().st_size for f in package.rglob("weight.bin"))


# --- the folder ---


def test_folder_holds_meta_parts_and_tokenizer(tiny_coreml_dir, tiny_model_dir):
    names = sorted(p.name for p in tiny_coreml_dir.iterdir() if not p.name.startswith("."))
    assert names == sorted([
        "meta.yaml", "config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
        "llama_embeddings.mlpackage", "llama_lm_head.mlpackage",
        "llama_FFN_PF_chunk_01of02.mlpackage", "llama_FFN_PF_chunk_02of02.mlpackage",
    ])
    assert (tiny_coreml_dir / "tokenizer.json").read_bytes() == (tiny_model_dir / "tokenizer.json").read_bytes()
    assert not list(tiny_coreml_dir.parent.glob(".*converting*"))  # no temp folder left


def test_meta_yaml_has_the_anemll_keys(tiny_coreml_dir):
    info = yaml.safe_load((tiny_coreml_dir / "meta.yaml").read_text())["model_info"]
    assert {"name", "version", "description", "license", "framework", "architecture", "converter"} <= set(info)
    assert info["architecture"] == "llama" and info["version"] == "0.3.4"
    assert params(tiny_coreml_dir) == {
        "context_length": 64, "state_length": 64, "batch_size": 16, "num_chunks": 2, "model_prefix": "llama",
        "lut_embeddings": "none", "lut_ffn": "none", "lut_lmhead": "none",
        "split_lm_head": 8, "lm_head_chunk_sizes": [48] * 8, "vocab_size": VOCAB, "hidden_size": HIDDEN,
        "num_layers": LAYERS, "embeddings": "llama_embeddings.mlpackage", "lm_head": "llama_lm_head.mlpackage",
        "ffn": "llama_FFN_PF.mlpackage", "argmax_in_model": False,
    }


def test_lut6_folder_names_parts_with_lut_suffixes(tiny_coreml_lut6_dir):
    p = params(tiny_coreml_lut6_dir)
    assert (p["lut_embeddings"], p["lut_ffn"], p["lut_lmhead"], p["num_chunks"]) == (6, 6, 6, 1)
    # channels per LUT group, as ANEMLL 0.3.5 writes it: the defaults by part (the tiny head's
    # 64-value rows are too short for a table per row)
    assert (p["lut_embeddings_per_channel"], p["lut_ffn_per_channel"], p["lut_lmhead_per_channel"]) == (16, 4, 16)
    assert (p["embeddings"], p["ffn"], p["lm_head"]) == (
        "llama_embeddings_lut6.mlpackage", "llama_FFN_PF_lut6.mlpackage", "llama_lm_head_lut6.mlpackage")
    for name in (p["embeddings"], p["lm_head"], "llama_FFN_PF_lut6_chunk_01of01.mlpackage"):
        assert (tiny_coreml_lut6_dir / name).is_dir()


def test_progress_reports_every_step_in_order(tiny_coreml_lut6_dir):
    events = json.loads(tiny_coreml_lut6_dir.with_name(tiny_coreml_lut6_dir.name + ".progress.json").read_text())
    messages = [m for m, _ in events]
    fractions = [f for _, f in events]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    for step in ("embeddings: building", "embeddings: tracing", "embeddings: converting",
                 "embeddings: palettizing (LUT6)", "embeddings: saving", "FFN chunk 1/1: tracing",
                 "FFN chunk 1/1: palettizing (LUT6)", "FFN chunk 1/1: saving infer + prefill as one package",
                 "LM head: palettizing (LUT6)", "writing meta.yaml and tokenizer files"):
        assert step in messages


# --- the parts' interfaces ---


def test_embeddings_take_one_token_or_a_batch(tiny_coreml_dir):
    spec = ct.utils.load_spec(str(tiny_coreml_dir / "llama_embeddings.mlpackage"))
    (ids,) = spec.description.input
    assert ids.name == "input_ids" and ids.type.multiArrayType.dataType == INT32
    enumerated = {tuple(s.shape) for s in ids.type.multiArrayType.enumeratedShapes.shapes}
    assert enumerated == {(1, 1), (1, 16)}
    assert [o.name for o in spec.description.output] == ["hidden_states"]
    assert spec.description.output[0].type.multiArrayType.dataType == FP16


def test_ffn_chunk_is_one_package_with_infer_and_prefill(tiny_coreml_dir):
    package = tiny_coreml_dir / "llama_FFN_PF_chunk_01of02.mlpackage"
    spec = ct.utils.load_spec(str(package))
    functions = {f.name: f for f in spec.description.functions}
    assert set(functions) == {"infer", "prefill"} and spec.description.defaultFunctionName == "infer"
    state = {"model_model_kv_cache_0": ((2 * LAYERS, KV_HEADS, 64, HEAD_DIM), FP16)}
    assert arrays(functions["infer"].input) == {
        "hidden_states": ((1, 1, HIDDEN), FP16), "position_ids": ((1,), INT32),
        "causal_mask": ((1, 1, 1, 64), FP16), "current_pos": ((1,), INT32)}
    assert arrays(functions["prefill"].input) == {
        "hidden_states": ((1, 16, HIDDEN), FP16), "position_ids": ((16,), INT32),
        "causal_mask": ((1, 1, 16, 64), FP16), "current_pos": ((1,), INT32)}
    for f in functions.values():
        assert arrays(f.state) == state
        assert [o.name for o in f.output] == ["output_hidden_states"]
    # MLModel picks a function by name (it reads the spec; predicting needs macOS)
    prefill = ct.models.MLModel(str(package), function_name="prefill", skip_model_load=True)
    assert prefill.function_name == "prefill"


def test_chunk_outputs_last_chunk_prefill_returns_the_first_position_only(tiny_coreml_dir):
    for name, prefill_rows in (("llama_FFN_PF_chunk_01of02.mlpackage", 16), ("llama_FFN_PF_chunk_02of02.mlpackage", 1)):
        program = mil_program(tiny_coreml_dir / name)
        assert tuple(program.functions["infer"].outputs[0].shape) == (1, 1, HIDDEN)
        assert tuple(program.functions["prefill"].outputs[0].shape) == (1, prefill_rows, HIDDEN)
    last = program.functions["infer"]
    assert len(last.find_ops(op_type="layer_norm")) == 2 + 1  # two per layer + the final norm in infer


def test_infer_and_prefill_store_their_weights_once(tiny_coreml_dir, tiny_model_dir, tmp_path):
    """The two-function package is no bigger than one function alone (within 10%)."""
    from anechat.engines.coreml.convert import ane_llama, parts
    from anechat.engines.coreml.convert.source import load_weights, read_spec

    spec = read_spec(tiny_model_dir)
    chunk = ane_llama.FFNChunk(spec, load_weights(tiny_model_dir), 0, 1, 64, parts.TRACE_DTYPE)
    single = parts.convert_ffn(parts.trace_ffn(chunk, spec, 16, 64), spec, 16, 64)  # the one program both come from
    single.save(str(tmp_path / "infer_only.mlpackage"))
    both = weights_bytes(tiny_coreml_dir / "llama_FFN_PF_chunk_01of02.mlpackage")
    alone = weights_bytes(tmp_path / "infer_only.mlpackage")
    assert alone > 60_000  # one layer of fp16 weights
    assert both <= 1.10 * alone


def test_lm_head_is_split_into_outputs_of_at_most_16384(tiny_coreml_dir):
    spec = ct.utils.load_spec(str(tiny_coreml_dir / "llama_lm_head.mlpackage"))
    assert arrays(spec.description.input) == {"hidden_states": ((1, 1, HIDDEN), FP16)}
    assert [o.name for o in spec.description.output] == [f"logits{i}" for i in range(1, 9)]
    program = mil_program(tiny_coreml_dir / "llama_lm_head.mlpackage")
    shapes = [tuple(v.shape) for v in program.functions["main"].outputs]
    assert shapes == [(1, 1, 48)] * 8 and sum(s[-1] for s in shapes) == VOCAB


def test_lm_head_split_grows_for_a_big_vocabulary():
    from anechat.engines.coreml.convert.options import MAX_DIMENSION

    sizes = CoreMLConvertOptions().lm_head_sizes(151936)  # Qwen-sized
    assert len(sizes) == 16 and max(sizes) <= MAX_DIMENSION and sum(sizes) == 151936
    assert CoreMLConvertOptions().lm_head_sizes(49152) == [6144] * 8  # SmolLM2


# --- palettization ---


def conv_weights(program):
    for function in program.functions.values():
        for op in function.find_ops(op_type="conv"):
            yield op.weight.op


def palettized(op) -> str:
    """"lut+scale" for a LUT with per-channel scales, "lut" for a bare LUT, else the op type."""
    if op.op_type == "constexpr_blockwise_shift_scale" and op.data.op.op_type == "constexpr_lut_to_dense":
        assert op.scale.val.shape == (op.outputs[0].shape[0],) + (1,) * (op.outputs[0].rank - 1)  # one scale per output channel
        return "lut+scale"
    return "lut" if op.op_type == "constexpr_lut_to_dense" else op.op_type


def test_lut6_parts_hold_lookup_tables_with_channel_scales_and_small_weights_stay_fp16(tiny_coreml_lut6_dir):
    ffn = mil_program(tiny_coreml_lut6_dir / "llama_FFN_PF_lut6_chunk_01of01.mlpackage")
    kinds = {(palettized(op), int(np.prod(op.outputs[0].shape))) for op in conv_weights(ffn)}
    # q/o (4096), gate/up/down (8192): 6-bit tables; k/v (2048 elements, the threshold): fp16
    assert kinds == {("lut+scale", 4096), ("lut+scale", 8192), ("const", 2048)}
    for op in ffn.functions["infer"].find_ops(op_type="constexpr_lut_to_dense"):
        assert op.lut.val.shape[-2] == 64 and op.lut.val.shape[0] == op.outputs[0].shape[0] // 4
    # norm weights and rotary tables are not palettized
    assert all(op.gamma is None or op.gamma.op.op_type == "const" for op in ffn.functions["infer"].find_ops(op_type="layer_norm"))
    assert {op.x.op.op_type for op in ffn.functions["infer"].find_ops(op_type="gather")} == {"const"}
    head = mil_program(tiny_coreml_lut6_dir / "llama_lm_head_lut6.mlpackage")
    assert {palettized(op) for op in conv_weights(head)} == {"lut+scale"}
    emb = mil_program(tiny_coreml_lut6_dir / "llama_embeddings_lut6.mlpackage")
    assert {palettized(op.x.op) for op in emb.functions["main"].find_ops(op_type="gather")} == {"lut+scale"}


def test_lut6_folder_is_smaller_and_chunk_tables_are_shared(tiny_coreml_dir, tiny_coreml_lut6_dir):
    fp16 = weights_bytes(tiny_coreml_dir / "llama_lm_head.mlpackage")
    lut6 = weights_bytes(tiny_coreml_lut6_dir / "llama_lm_head_lut6.mlpackage")
    assert lut6 < 0.5 * fp16
    program = mil_program(tiny_coreml_lut6_dir / "llama_FFN_PF_lut6_chunk_01of01.mlpackage")
    tables = {name: [op.lut.val.tobytes() for op in f.find_ops(op_type="constexpr_lut_to_dense")]
              for name, f in program.functions.items()}
    assert tables["infer"] and tables["infer"] == tables["prefill"]



def test_lut_groups_default_by_part_and_an_explicit_group_size_applies_to_every_part():
    o = CoreMLConvertOptions()
    # SmolLM2-sized rows (576): a table per row below 8 bits; at 8 bits four-channel FFN groups, else 16
    assert (o.group("ffn", 8, 576), o.group("embeddings", 8, 576), o.group("lm_head", 8, 576)) == (4, 16, 16)
    assert o.group("ffn", 6, 576) == o.group("ffn", 4, 576) == o.group("lm_head", 6, 576) == o.group("embeddings", 4, 576) == 1
    assert (o.group("ffn", 6, 64), o.group("lm_head", 6, 64)) == (4, 16)  # a 64-entry table per 64-value row would outweigh the row
    assert {CoreMLConvertOptions(group_size=8).group(p, 6, 576) for p in ("ffn", "embeddings", "lm_head")} == {8}

# --- refusals and failures ---


def _copy_model(src: Path, dst: Path, **config_changes) -> Path:
    import shutil

    shutil.copytree(src, dst)
    config = json.loads((dst / "config.json").read_text())
    config.update(config_changes)
    (dst / "config.json").write_text(json.dumps(config))
    return dst


def test_unsupported_architecture_is_refused_with_the_supported_list(tiny_model_dir, tmp_path):
    phi = _copy_model(tiny_model_dir, tmp_path / "phi", architectures=["Phi3ForCausalLM"], model_type="phi3")
    with pytest.raises(ModelFormatError) as err:
        convert_to_coreml(phi, tmp_path / "out")
    assert "Phi3ForCausalLM" in str(err.value) and all(a in str(err.value) for a in SUPPORTED_ARCHITECTURES)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


def test_quantized_or_incomplete_sources_are_refused(tiny_model_dir, tmp_path):
    quantized = _copy_model(tiny_model_dir, tmp_path / "q4", quantization={"group_size": 64, "bits": 4})
    with pytest.raises(ModelFormatError, match="quantized"):
        convert_to_coreml(quantized, tmp_path / "out")
    no_tokenizer = _copy_model(tiny_model_dir, tmp_path / "notok")
    (no_tokenizer / "tokenizer.json").unlink()
    with pytest.raises(ModelFormatError, match="tokenizer.json"):
        convert_to_coreml(no_tokenizer, tmp_path / "out")
    with pytest.raises(ModelNotFound):
        convert_to_coreml(tmp_path / "nowhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("bad", [dict(lut_ffn=5), dict(batch_size=128), dict(num_chunks=3), dict(prefix="my model")])
def test_bad_options_are_refused_before_anything_is_written(tiny_model_dir, tmp_path, bad):
    with pytest.raises(InvalidParameter):
        convert_to_coreml(tiny_model_dir, tmp_path / "out", CoreMLConvertOptions(context_length=64, **bad))
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(InvalidParameter, match="already exists"):
        convert_to_coreml(tiny_model_dir, out, CoreMLConvertOptions(context_length=64, batch_size=16))
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_conversion_stopped_midway_leaves_no_folder(tiny_model_dir, tmp_path):
    class Stop(Exception):
        pass

    seen = []

    def progress(message, fraction):
        seen.append(message)
        if message == "FFN chunk 1/2: saving infer + prefill as one package":
            raise Stop  # as a cancelled CLI or a crash would

    with pytest.raises(Stop):
        convert_to_coreml(tiny_model_dir, tmp_path / "out", CoreMLConvertOptions(context_length=64, batch_size=16, num_chunks=2), progress)
    assert "embeddings: saving" in seen  # parts had been written before the stop
    assert list(tmp_path.iterdir()) == []
