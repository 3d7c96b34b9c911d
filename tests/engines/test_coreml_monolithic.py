"""Monolithic ANEMLL models (0.3.5 ``--monolithic``): ONE package holds embeddings, every
decoder layer and the LM head, with an ``infer`` function (one token) and a ``prefill``
function (a batch) that take token ids (``input_ids``, ``position_ids``, ``causal_mask``,
``current_pos``), share one KV state and return ``logits1..N``; ``meta.yaml`` says
``model_type: monolithic`` and names the package in ``monolithic_model``.

The package here is written by coremltools from the tiny llama (the converter's own
modules, stacked into one), with the meta.yaml ANEMLL's ``generate_meta_yaml.py --monolithic``
writes. It must decode the same greedy tokens as the multi-part conversion and the MLX engine.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml

pytest.importorskip("coremltools")

from anechat.engines.base import SamplingParams  # noqa: E402
from anechat.engines.coreml.engine import CoreMLEngine  # noqa: E402
from anechat.engines.errors import ModelFormatError  # noqa: E402

pytestmark = pytest.mark.coreml

CONTEXT, BATCH = 64, 16
PROMPTS = ["The quick brown fox jumps over the lazy dog.", "def add(a, b):"]


def _monolithic_package(src, destination, sizes: list[int], argmax: bool = False) -> None:
    """``llama_monolithic_full.mlpackage``: embeddings + all layers + split LM head, infer + prefill.
    ``argmax``: infer returns ANEMLL's ``argmax_idx`` / ``argmax_val`` (per LM head chunk) instead."""
    import coremltools as ct
    import torch

    from anechat.engines.coreml.convert import ane_llama, parts
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights

    spec = with_vocab_from_weights(read_spec(src), src)
    weights = load_weights(src)

    class Monolithic(ane_llama.FFNChunk):  # the KV buffer keeps its name: the state ANEMLL's models carry
        def __init__(self) -> None:
            super().__init__(spec, weights, 0, spec.num_layers, CONTEXT, parts.TRACE_DTYPE)
            self.embed = ane_llama.Embeddings(spec, weights, parts.TRACE_DTYPE)
            self.head = ane_llama.LMHead(spec, weights, sizes, parts.TRACE_DTYPE)

        def forward(self, input_ids, position_ids, causal_mask, current_pos):
            hidden = super().forward(self.embed(input_ids), position_ids, causal_mask, current_pos)
            logits = self.head(hidden)
            if not (argmax and self.mode == "infer"):
                return logits
            best = [torch.max(part.reshape(1, -1), dim=-1) for part in logits]
            return (torch.cat([b.indices.to(torch.int32) for b in best]), torch.cat([b.values for b in best]))

    module = Monolithic().eval()
    functions = {}
    for function in ("infer", "prefill"):
        seq = 1 if function == "infer" else BATCH
        module.mode = function
        example = (torch.zeros((1, seq), dtype=torch.int32), torch.arange(seq, dtype=torch.int32),
                   torch.zeros((1, 1, seq, CONTEXT)), torch.zeros((1,), dtype=torch.int32))
        with torch.no_grad():
            traced = torch.jit.trace(module, example, check_trace=False)
        module.kv_cache.zero_()
        with parts.quiet():
            functions[function] = ct.convert(
                traced,
                inputs=[
                    ct.TensorType(name="input_ids", shape=(1, seq), dtype=np.int32),
                    ct.TensorType(name="position_ids", shape=(seq,), dtype=np.int32),
                    ct.TensorType(name="causal_mask", shape=(1, 1, seq, CONTEXT), dtype=np.float16),
                    ct.TensorType(name="current_pos", shape=(1,), dtype=np.int32),
                ],
                outputs=(
                    [ct.TensorType(name="argmax_idx", dtype=np.int32), ct.TensorType(name="argmax_val", dtype=np.float16)]
                    if argmax and function == "infer"
                    else [ct.TensorType(name=f"logits{i + 1}", dtype=np.float16) for i in range(len(sizes))]
                ),
                states=[ct.StateType(wrapped_type=ct.TensorType(shape=tuple(module.kv_cache.shape), dtype=np.float16),
                                     name=ane_llama.STATE_NAME)],
                convert_to="mlprogram",
                minimum_deployment_target=ct.target.macOS15,
                compute_precision=ct.precision.FLOAT16,
                skip_model_load=True,
            )
    # one package with both functions, as ANEMLL combines them: coremltools' multifunction API
    descriptor = ct.utils.MultiFunctionDescriptor()
    for function, mlmodel in functions.items():
        single = destination.parent / f"{destination.stem}-{function}.mlpackage"
        mlmodel.save(str(single))
        descriptor.add_function(str(single), src_function_name="main", target_function_name=function)
    descriptor.default_function_name = "infer"
    ct.utils.save_multifunction(descriptor, str(destination))
    for function in functions:
        shutil.rmtree(destination.parent / f"{destination.stem}-{function}.mlpackage")


def _monolithic_folder(tiny_model_dir, tiny_coreml_dir, folder, argmax: bool = False):
    """The tiny llama as ANEMLL's monolithic conversion lays it out (meta.yaml names the
    .mlmodelc a compile step would make; only the .mlpackage is here, as off macOS)."""
    folder.mkdir()
    chunked = yaml.safe_load((tiny_coreml_dir / "meta.yaml").read_text())["model_info"]["parameters"]
    sizes = list(chunked["lm_head_chunk_sizes"])
    _monolithic_package(tiny_model_dir, folder / "llama_monolithic_full.mlpackage", sizes, argmax)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "config.json"):
        if (tiny_model_dir / name).is_file():
            shutil.copy(tiny_model_dir / name, folder / name)
    params = {
        "context_length": CONTEXT,
        "batch_size": BATCH,
        "lut_bits": "none",
        "model_prefix": "llama",
        "monolithic_model": "llama_monolithic_full.mlmodelc",
        "split_lm_head": len(sizes),
    }
    if argmax:
        params["argmax_in_model"] = True
    params.update({"vocab_size": sum(sizes), "lm_head_chunk_sizes": sizes, "functions": ["infer", "prefill"]})
    meta = {
        "model_info": {
            "name": "anemll-tiny-llama-ctx64-monolithic",
            "version": "0.3.5",
            "license": "MIT",
            "framework": "Core ML",
            "architecture": "llama",
            "model_type": "monolithic",
            "parameters": params,
        }
    }
    (folder / "meta.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    return folder


@pytest.fixture(scope="module")
def monolithic_folder(tiny_model_dir, tiny_coreml_dir, tmp_path_factory):
    return _monolithic_folder(tiny_model_dir, tiny_coreml_dir, tmp_path_factory.mktemp("coreml") / "tiny-monolithic")


def greedy_ids(folder, text: str, n: int = 16) -> list[int]:
    engine = CoreMLEngine()
    session = engine.load(folder)
    try:
        events = list(session.generate_ids(session.tokenizer.encode(text), SamplingParams(max_tokens=n), ignore_eos=True))
        return [t for e in events[:-1] for t in e.token_ids]
    finally:
        engine.unload()


def test_a_monolithic_model_decodes_the_same_greedy_tokens_as_the_multi_part_conversion(monolithic_folder, tiny_coreml_dir):
    for text in PROMPTS:
        assert greedy_ids(monolithic_folder, text) == greedy_ids(tiny_coreml_dir, text), text


def test_a_monolithic_model_decodes_the_same_greedy_tokens_as_mlx(monolithic_folder, tiny_model_dir):
    pytest.importorskip("mlx")
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    session = engine.load(tiny_model_dir)
    try:
        for text in PROMPTS:
            ids = session.tokenizer.encode(text)
            events = list(session.generate_ids(ids, SamplingParams(max_tokens=16), ignore_eos=True))
            assert greedy_ids(monolithic_folder, text) == [t for e in events[:-1] for t in e.token_ids], text
    finally:
        engine.unload()


def test_a_monolithic_model_with_argmax_in_model_picks_the_same_tokens(monolithic_folder, tiny_model_dir, tiny_coreml_dir, tmp_path):
    folder = _monolithic_folder(tiny_model_dir, tiny_coreml_dir, tmp_path / "tiny-monolithic-argmax", argmax=True)
    engine = CoreMLEngine()
    session = engine.load(folder)
    try:  # the package answers with the winner itself, not logits
        assert isinstance(session.forward.infer(session.tokenizer.encode(PROMPTS[0])[0], 0), int)
    finally:
        engine.unload()
    for text in PROMPTS:
        assert greedy_ids(folder, text) == greedy_ids(monolithic_folder, text), text


def test_a_long_prompt_is_prefilled_in_batches_by_the_prefill_function_and_matches_token_by_token(monolithic_folder):
    engine = CoreMLEngine()
    session = engine.load(monolithic_folder)
    try:
        forward = session.forward
        assert forward.monolithic and forward.batch_size == BATCH and forward.has_prefill
        ids = session.tokenizer.encode(" ".join(PROMPTS * 3))[: BATCH * 2 + 3]
        forward.reset()
        batched = forward.infer(ids[-1], forward.prefill(ids[:-1], 0))
        forward.reset()
        for pos, token in enumerate(ids[:-1]):
            forward.infer(token, pos)
        single = forward.infer(ids[-1], len(ids) - 1)
        np.testing.assert_allclose(batched, single, rtol=1e-3, atol=1e-3)
    finally:
        engine.unload()


def test_the_model_info_and_the_catalog_show_a_monolithic_model_as_core_ml(monolithic_folder):
    from anechat.catalog.formats import detect

    det = detect(monolithic_folder)
    assert det.format == "coreml" and det.engines == ("coreml",) and not det.reason
    assert det.quantization == "float16" and det.context_length == CONTEXT and det.details["monolithic"]
    engine = CoreMLEngine()
    session = engine.load(monolithic_folder)
    try:
        assert session.info.extra["parts"] == ["llama_monolithic_full.mlpackage"] and session.info.extra["monolithic"]
        assert session.info.context_length == CONTEXT
    finally:
        engine.unload()


def test_a_monolithic_folder_without_its_package_is_refused_in_one_line_naming_it(monolithic_folder, tmp_path):
    from anechat.catalog.formats import detect

    folder = tmp_path / "empty"
    folder.mkdir()
    shutil.copy(monolithic_folder / "meta.yaml", folder / "meta.yaml")
    shutil.copy(monolithic_folder / "tokenizer.json", folder / "tokenizer.json")
    with pytest.raises(ModelFormatError, match="missing Core ML part llama_monolithic_full .*monolithic_model") as err:
        CoreMLEngine().load(folder)
    assert "\n" not in str(err.value)
    assert "llama_monolithic_full" in detect(folder).reason
