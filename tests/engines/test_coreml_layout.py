"""Reading ANEMLL-layout folders: ours, and the quirks of the ones ANEMLL publishes.

Most folders here are fabricated (empty part folders + a meta.yaml): finding the
parts does not open them. The last tests load real converted parts.
"""

from __future__ import annotations

import shutil
import sys

import numpy as np
import pytest
import yaml

from anechat.engines.coreml.anemll import read_layout, read_meta
from anechat.engines.coreml.forward import read_lm_head
from anechat.engines.errors import ModelFormatError

BASE = {
    "context_length": 512,
    "batch_size": 64,
    "model_prefix": "llama",
    "lut_embeddings": "none",
    "lut_ffn": 6,
    "lut_lmhead": 6,
    "num_chunks": 2,
    "split_lm_head": 8,
}


def anemll_folder(tmp_path, parts, **params):
    """A folder with empty part directories and a meta.yaml (model_info.parameters = BASE + params;
    a value of ``...`` drops that key)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name in parts:
        (tmp_path / name).mkdir()
    merged = {k: v for k, v in {**BASE, **params}.items() if v is not ...}
    (tmp_path / "meta.yaml").write_text(yaml.safe_dump({"model_info": {"name": "m", "version": "0.3.4", "parameters": merged}}))
    return tmp_path


CHUNKED = ["llama_embeddings.mlpackage", "llama_lm_head_lut6.mlpackage", "llama_FFN_PF_lut6_chunk_01of02.mlpackage", "llama_FFN_PF_lut6_chunk_02of02.mlpackage"]


def test_meta_yaml_naming_mlmodelc_falls_back_to_the_mlpackage(tmp_path):
    folder = anemll_folder(
        tmp_path, CHUNKED, embeddings="llama_embeddings.mlmodelc", lm_head="llama_lm_head_lut6.mlmodelc", ffn="llama_FFN_PF_lut6.mlmodelc"
    )
    layout = read_layout(folder)
    assert layout.embeddings.pick(".mlmodelc").name == "llama_embeddings.mlpackage"
    assert layout.lm_head.pick(".mlpackage").name == "llama_lm_head_lut6.mlpackage"
    assert [c.infer.pick(".mlpackage").name for c in layout.chunks] == CHUNKED[2:]


def test_ffn_without_chunk_suffix_means_chunk_01of01(tmp_path):
    parts = ["llama_embeddings.mlmodelc", "llama_lm_head_lut6.mlmodelc", "llama_FFN_PF_lut6_chunk_01of01.mlmodelc"]
    layout = read_layout(anemll_folder(tmp_path, parts, num_chunks=1, ffn="llama_FFN_PF_lut6.mlmodelc"))
    (chunk,) = layout.chunks
    assert chunk.infer.stem == "llama_FFN_PF_lut6_chunk_01of01"
    assert (chunk.infer_function, chunk.prefill_function) == ("infer", "prefill")
    assert chunk.infer.mlpackage is None and chunk.infer.mlmodelc is not None


def test_ffn_named_with_its_first_chunk_finds_every_chunk(tmp_path):
    layout = read_layout(anemll_folder(tmp_path, CHUNKED, ffn="llama_FFN_PF_lut6_chunk_01of02.mlmodelc"))
    assert [c.index for c in layout.chunks] == [1, 2]


def test_combined_ffn_pf_wins_over_single_function_leftovers(tmp_path):
    leftovers = ["llama_FFN_lut6_chunk_01of02.mlpackage", "llama_FFN_lut6_chunk_02of02.mlpackage", "llama_prefill_lut6_chunk_01of02.mlpackage", "llama_prefill_lut6_chunk_02of02.mlpackage"]
    layout = read_layout(anemll_folder(tmp_path, CHUNKED + leftovers, ffn="llama_FFN_lut6.mlmodelc"))
    assert [c.infer.stem for c in layout.chunks] == ["llama_FFN_PF_lut6_chunk_01of02", "llama_FFN_PF_lut6_chunk_02of02"]
    assert all(c.prefill is c.infer for c in layout.chunks)


def test_older_releases_with_separate_infer_and_prefill_packages(tmp_path):
    parts = CHUNKED[:2] + ["llama_FFN_lut6_chunk_01of02.mlmodelc", "llama_FFN_lut6_chunk_02of02.mlmodelc", "llama_prefill_lut6_chunk_01of02.mlmodelc", "llama_prefill_lut6_chunk_02of02.mlmodelc"]
    layout = read_layout(anemll_folder(tmp_path, parts, ffn="llama_FFN_lut6_chunk_01of02.mlmodelc", prefill="llama_prefill_lut6_chunk_01of02.mlmodelc"))
    assert [(c.infer.stem, c.prefill.stem) for c in layout.chunks] == [
        ("llama_FFN_lut6_chunk_01of02", "llama_prefill_lut6_chunk_01of02"),
        ("llama_FFN_lut6_chunk_02of02", "llama_prefill_lut6_chunk_02of02"),
    ]
    assert layout.chunks[0].infer_function is None  # single-function packages: their default function


def test_parts_are_found_from_prefix_and_lut_when_meta_names_none(tmp_path):
    layout = read_layout(anemll_folder(tmp_path, CHUNKED))
    assert layout.lm_head.stem == "llama_lm_head_lut6" and len(layout.chunks) == 2


def test_older_and_newer_meta_keys(tmp_path):
    old = read_meta(anemll_folder(tmp_path / "old", [], lut_ffn=..., lut_lmhead=..., lut_embeddings=..., split_lm_head=..., lut_bits=4, num_logits=8))
    assert (old.lut_ffn, old.lut_lmhead, old.lut_embeddings, old.split_lm_head) == (4, 4, 4, 8)
    new = read_meta(
        anemll_folder(tmp_path / "new", [], argmax_in_model=True, vocab_size=49152, lm_head_chunk_sizes="[6144, 6144]", state_length=1024, lut_ffn="6,4")
    )
    assert new.argmax_in_model and new.vocab_size == 49152 and new.lm_head_chunk_sizes == (6144, 6144)
    assert new.state_length == 1024 and new.lut_ffn == 6 and new.lut_embeddings is None


@pytest.mark.parametrize(
    "key, value",
    [
        ("context_length", "abc"),
        ("context_length", None),
        ("batch_size", -1),
        ("num_chunks", 1.5),
        ("lut_ffn", "six"),
        ("argmax_in_model", "maybe"),
        ("state_length", 256),  # shorter than the context
        ("lm_head_chunk_sizes", "a,b"),
        ("ffn", "../elsewhere/llama_FFN_PF"),
    ],
)
def test_wrong_values_in_meta_yaml_are_refused_naming_file_and_key(tmp_path, key, value):
    folder = anemll_folder(tmp_path, CHUNKED, **{key: value})
    with pytest.raises(ModelFormatError) as err:
        read_layout(folder)
    message = str(err.value)
    assert str(folder / "meta.yaml") in message and key in message


def test_unreadable_meta_yaml_is_refused(tmp_path):
    (tmp_path / "meta.yaml").write_text("model_info: [unclosed")
    with pytest.raises(ModelFormatError, match="not valid YAML"):
        read_meta(tmp_path)
    (tmp_path / "meta.yaml").write_text("name: just a mapping\n")
    with pytest.raises(ModelFormatError, match="model_info"):
        read_meta(tmp_path)


def test_missing_parts_and_chunks_are_named(tmp_path):
    with pytest.raises(ModelFormatError, match=r"missing Core ML part llama_lm_head_lut6 .*LM head"):
        read_layout(anemll_folder(tmp_path / "a", [CHUNKED[0], *CHUNKED[2:]]))
    with pytest.raises(ModelFormatError, match="missing Core ML part llama_FFN_PF_lut6_chunk_02of02"):
        read_layout(anemll_folder(tmp_path / "b", CHUNKED[:3]))
    with pytest.raises(ModelFormatError, match="num_chunks is 3"):
        read_layout(anemll_folder(tmp_path / "c", CHUNKED, num_chunks=3))


def test_a_monolithic_folder_is_one_package_serving_infer_and_prefill(tmp_path):
    folder = anemll_folder(
        tmp_path, ["qwen_monolithic_full_lut4.mlpackage"], model_type="monolithic", lut_ffn=..., lut_lmhead=...,
        lut_embeddings=..., lut_bits=4, model_prefix="qwen", monolithic_model="qwen_monolithic_full_lut4.mlmodelc",
    )
    layout = read_layout(folder)
    assert layout.monolithic and layout.embeddings is None and layout.lm_head is None
    (chunk,) = layout.chunks
    assert chunk.infer is chunk.prefill and (chunk.infer_function, chunk.prefill_function) == ("infer", "prefill")
    assert [p.pick(".mlmodelc").name for p in layout.all_parts] == ["qwen_monolithic_full_lut4.mlpackage"]
    assert layout.luts == {"embeddings": 4, "ffn": 4, "lm_head": 4}


def test_a_monolithic_model_not_yet_combined_uses_its_infer_and_prefill_packages(tmp_path):
    parts = ["llama_monolithic.mlpackage", "llama_monolithic_prefill.mlpackage"]
    (chunk,) = read_layout(anemll_folder(tmp_path, parts, model_type="monolithic", lut_ffn=...)).chunks
    assert (chunk.infer.stem, chunk.prefill.stem, chunk.infer_function) == ("llama_monolithic", "llama_monolithic_prefill", None)


def test_lm_head_outputs_are_concatenated_in_numeric_order(tmp_path):
    meta = read_meta(anemll_folder(tmp_path, []))
    out = {f"logits{i}": np.full((1, 1, 2), i, np.float16) for i in range(1, 11)}
    logits = read_lm_head(out, meta)
    assert logits.dtype == np.float32 and logits.tolist() == [i for i in range(1, 11) for _ in range(2)]


def test_argmax_in_model_heads_map_chunk_indices_back_to_the_vocabulary(tmp_path):
    meta = read_meta(anemll_folder(tmp_path / "sizes", [], argmax_in_model=True, lm_head_chunk_sizes=[10, 10, 5]))
    out = {"argmax_idx": np.array([3, 7, 4], np.int32), "argmax_val": np.array([1.0, 0.5, 2.0], np.float16)}
    assert read_lm_head(out, meta) == 20 + 4  # third chunk starts at 20
    by_vocab = read_meta(anemll_folder(tmp_path / "vocab", [], argmax_in_model=True, vocab_size=11))
    assert read_lm_head({"argmax_idx": np.array([0, 2]), "argmax_val": np.array([0.0, 9.0])}, by_vocab) == 6 + 2  # 11 = 6 + 5


# --- real parts ---------------------------------------------------------------------------


@pytest.mark.coreml
def test_a_folder_whose_meta_names_mlmodelc_parts_still_loads_and_generates(tiny_coreml_dir, tmp_path):
    pytest.importorskip("coremltools")
    from anechat.engines.base import SamplingParams
    from anechat.engines.coreml.engine import CoreMLEngine

    copy = tmp_path / "renamed"
    shutil.copytree(tiny_coreml_dir, copy)
    doc = yaml.safe_load((copy / "meta.yaml").read_text())
    params = doc["model_info"]["parameters"]
    for key in ("embeddings", "lm_head", "ffn"):
        params[key] = params[key].replace(".mlpackage", ".mlmodelc")
    (copy / "meta.yaml").write_text(yaml.safe_dump(doc))

    def first_tokens(folder):
        session = CoreMLEngine().load(folder)
        events = list(session.generate_ids([1, 50, 60, 70], SamplingParams(max_tokens=8), ignore_eos=True))
        return [t for e in events[:-1] for t in e.token_ids]

    assert first_tokens(copy) == first_tokens(tiny_coreml_dir)


@pytest.mark.coreml
@pytest.mark.skipif(sys.platform == "darwin", reason="Core ML runs .mlmodelc parts on macOS")
def test_compiled_only_parts_are_refused_off_macos_with_the_reason(tiny_coreml_dir, tmp_path):
    pytest.importorskip("coremltools")
    from anechat.engines.coreml.engine import CoreMLEngine

    copy = tmp_path / "compiled"
    shutil.copytree(tiny_coreml_dir, copy)
    head = next(copy.glob("*_lm_head*.mlpackage"))
    head.rename(head.with_suffix(".mlmodelc"))  # stands in for a compiled part: only macOS could run it
    with pytest.raises(ModelFormatError, match=r"\.mlmodelc.*MIL executor needs the \.mlpackage"):
        CoreMLEngine().load(copy)
