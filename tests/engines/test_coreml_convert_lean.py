"""The converter's shortcuts around coremltools (engines/coreml/convert/lean.py: redundant pass
work dropped; FFN chunks traced on two positions) write the very package coremltools' own
conversion of a chunk traced on a full batch writes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest

ct = pytest.importorskip("coremltools")
pytest.importorskip("torch")

from anechat.engines.coreml.convert import ane_llama, lean, parts  # noqa: E402
from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights  # noqa: E402

pytestmark = pytest.mark.coreml

BATCH, CONTEXT = 16, 64


def convert_chunk(src: Path, destination: Path) -> Path:
    spec = with_vocab_from_weights(read_spec(src), src)
    module = ane_llama.FFNChunk(spec, load_weights(src), 0, spec.num_layers, CONTEXT, parts.TRACE_DTYPE)
    mlmodel = parts.convert_ffn(parts.trace_ffn(module, spec, BATCH, CONTEXT), spec, BATCH, CONTEXT)
    parts.save_ffn(mlmodel, spec, BATCH, CONTEXT, destination)
    return destination


@pytest.mark.parametrize("family", ["tiny_model_dir", "tiny_qwen3_dir", "tiny_gemma3_dir"])
def test_lean_conversion_of_a_two_position_trace_writes_coremltools_own_package(family, request, tmp_path, monkeypatch):
    src = request.getfixturevalue(family)
    ours = convert_chunk(src, tmp_path / "lean.mlpackage")
    assert parts.TRACE_POSITIONS < BATCH
    with monkeypatch.context() as m:  # coremltools as it comes, tracing the whole prefill batch
        m.setattr(lean, "lean_pipeline", lambda constexpr_free=False: contextlib.nullcontext())
        m.setattr(parts, "TRACE_POSITIONS", BATCH)
        theirs = convert_chunk(src, tmp_path / "plain.mlpackage")
    assert ct.utils.load_spec(str(ours)) == ct.utils.load_spec(str(theirs))
    weights = "Data/com.apple.CoreML/weights/weight.bin"
    assert (ours / weights).read_bytes() == (theirs / weights).read_bytes()
