"""Qwen 2.5, Qwen 3 and Gemma 3 through both ANE converters: the tiny checkpoint of each family
decodes the same greedy tokens in the MLX engine (mlx-lm), the Core ML engine (two FFN
chunks, fp16, run by the MIL executor) and the Core AI engine (fp32)."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("coremltools")
pytest.importorskip("mlx")

sys.path.insert(0, str(Path(__file__).parent))

from anechat.engines.base import SamplingParams  # noqa: E402
from anechat.engines.errors import ModelFormatError  # noqa: E402

FAMILIES = {"qwen2": "tiny_qwen2_dir", "qwen3": "tiny_qwen3_dir", "gemma3_text": "tiny_gemma3_dir"}
#: longer than Gemma's window of 8, so the sliding layers really slide
PROMPTS = ["The quick brown fox jumps over the lazy dog.", "What is the capital of France? Paris is", "def add(a, b):\n    return"]
TOKENS = 24


def greedy_ids(session, prompt_ids, n=TOKENS) -> list[int]:
    events = list(session.generate_ids(prompt_ids, SamplingParams(max_tokens=n), ignore_eos=True))
    return [t for e in events[:-1] for t in e.token_ids]


@pytest.fixture(scope="module", params=list(FAMILIES))
def family(request):
    """(family, source folder, Core ML folder, Core AI folder or None, MLX greedy tokens per prompt)."""
    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml
    from anechat.engines.mlx.engine import MLXEngine

    src = request.getfixturevalue(FAMILIES[request.param])
    work = request.getfixturevalue("tmp_path_factory").mktemp(request.param)
    coreml = convert_to_coreml(src, work / "coreml", CoreMLConvertOptions(context_length=64, batch_size=16, num_chunks=2))
    coreai = None
    try:
        from coreai_fixtures import convert_tiny

        coreai = convert_tiny(src, work / "coreai", context_length=64)
    except pytest.skip.Exception:
        pass
    engine = MLXEngine()
    session = engine.load(src)
    prompts = [session.tokenizer.encode(text) for text in PROMPTS]
    expected = []
    for ids in prompts:
        session.reset()
        expected.append(greedy_ids(session, ids))
    engine.unload()
    return request.param, src, coreml, coreai, prompts, expected


def test_mlx_runs_each_family_and_its_answers_are_not_degenerate(family):
    _, _, _, _, _, expected = family
    assert all(len(tokens) == TOKENS for tokens in expected)
    assert len({t for tokens in expected for t in tokens}) > 10  # the logits are spread: no constant answer


def test_core_ml_fp16_two_chunks_decodes_the_mlx_tokens(family):
    from anechat.engines.coreml.engine import CoreMLEngine

    name, _, coreml, _, prompts, expected = family
    session = CoreMLEngine().load(coreml)
    for ids, tokens in zip(prompts, expected):
        session.reset()
        assert greedy_ids(session, ids) == tokens, name


def test_core_ml_in_the_fp16_faithful_executor_decodes_the_mlx_tokens(family):
    """Every op's result rounded to fp16, as the Neural Engine computes (Gemma's activations are
    the ones that grow)."""
    from anechat.engines.coreml.engine import CoreMLEngine

    name, _, coreml, _, prompts, expected = family
    session = CoreMLEngine(fp16_activations=True).load(coreml)
    for ids, tokens in zip(prompts, expected):
        session.reset()
        assert greedy_ids(session, ids) == tokens, name


def test_core_ai_fp32_decodes_the_mlx_tokens(family):
    from anechat.engines.coreai.engine import CoreAIEngine

    name, _, _, coreai, prompts, expected = family
    if coreai is None:
        pytest.skip("Core AI is not installed")
    engine = CoreAIEngine()
    session = engine.load(coreai)
    try:
        for ids, tokens in zip(prompts, expected):
            session.reset()
            assert greedy_ids(session, ids) == tokens, name
    finally:
        engine.unload()


def test_the_converted_folders_name_their_family(family):
    name, _, coreml, coreai, _, _ = family
    import yaml

    meta = yaml.safe_load((coreml / "meta.yaml").read_text())
    assert json.dumps(meta).count(f'"{name}"') >= 1
    if coreai is not None:
        assert name in (coreai / "coreai.json").read_text()


# --- the model description itself ---------------------------------------------------------


def _logits(src: Path, **changes) -> np.ndarray:
    from anechat.engines.coreml.convert.check import logits_of
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights

    spec = replace(with_vocab_from_weights(read_spec(src), src), **changes)
    return logits_of(spec, load_weights(src), list(range(3, 40)))


def test_gemma_sliding_layers_forget_what_lies_beyond_their_window(tiny_gemma3_dir):
    windowed, unbounded = _logits(tiny_gemma3_dir), _logits(tiny_gemma3_dir, sliding_window=10**6)
    assert np.allclose(windowed[:8], unbounded[:8], atol=1e-4)  # inside the window nothing differs
    assert not np.allclose(windowed[8:], unbounded[8:], atol=1e-2)


@pytest.mark.parametrize("fixture", ["tiny_gemma3_dir", "tiny_model_dir"])
def test_carrying_the_residual_stream_scaled_down_computes_the_same_logits(request, fixture):
    src = request.getfixturevalue(fixture)
    plain, scaled = _logits(src), _logits(src, residual_scale=2.0**-6)
    assert np.abs(plain - scaled).max() < 1e-3 * np.abs(plain).max()


def test_a_gemma_whose_residual_stream_outgrows_fp16_is_carried_scaled_and_keeps_the_mlx_top1(tmp_path_factory):
    """Post-norm gains of 8000 push the float32 stream past fp16's 65504 (as real Gemma
    checkpoints do); the conversion carries it scaled by a power of two, so the fp16-faithful
    executor still picks mlx-lm's next token (teacher-forced: 64 positions; unscaled, every
    logit would be NaN)."""
    import mlx.core as mx

    from tinymodel import build_tiny_family

    from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights
    from anechat.engines.coreml.engine import CoreMLEngine
    from anechat.engines.mlx.engine import MLXEngine
    from anechat.engines.modeling.fp16 import fp16_ready, residual_peak

    work = tmp_path_factory.mktemp("gemma-loud")
    src = build_tiny_family(work / "src", "gemma3_text", num_layers=4, post_norm_gain=8000.0)
    spec, weights = with_vocab_from_weights(read_spec(src), src), load_weights(src)
    ids = list(range(3, 67))
    assert residual_peak(spec, weights, ids) > 65504
    scaled = fp16_ready(spec, weights, ids)
    assert scaled.residual_scale < 1 and residual_peak(scaled, weights, ids) < 65504 / 8
    coreml = CoreMLEngine(fp16_activations=True).load(
        convert_to_coreml(src, work / "coreml", CoreMLConvertOptions(context_length=64, batch_size=16, num_chunks=1))
    )
    engine = MLXEngine()
    reference = np.array(engine.load(src).model(mx.array([ids[:64]]))[0].astype(mx.float32))
    engine.unload()
    coreml.forward.reset()
    ours = np.stack([np.asarray(coreml.forward.infer(token, pos)).reshape(-1) for pos, token in enumerate(ids[:64])])
    assert np.isfinite(ours).all()
    assert np.mean(ours.argmax(-1) == reference.argmax(-1)) >= 0.9


def test_gemma_3_270m_config_reads_as_five_sliding_layers_then_one_global_with_their_own_rope_bases():
    from anechat.engines.modeling.rope import inverse_frequencies
    from anechat.engines.modeling.spec import FULL, SLIDING, spec_from_config

    config = {  # google/gemma-3-270m's config.json (transformers 4 keys), abridged
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text", "hidden_size": 640, "intermediate_size": 2048,
        "num_hidden_layers": 18, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256, "vocab_size": 262144,
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0, "rope_scaling": None,
        "query_pre_attn_scalar": 256, "sliding_window": 512, "_sliding_window_pattern": 6, "hidden_activation": "gelu_pytorch_tanh",
        "final_logit_softcapping": None, "attn_logit_softcapping": None, "tie_word_embeddings": True,
    }
    spec = spec_from_config(config, "gemma-3-270m")
    assert spec.layer_types == ((SLIDING,) * 5 + (FULL,)) * 3 and spec.sliding_window == 512
    assert spec.attention_scale == 256**-0.5 and spec.embed_scale == 25.25  # √640 in bfloat16, as mlx-lm applies it
    assert spec.norm_offset == 1.0 and spec.sandwich_norms and spec.qk_norm and spec.activation == "gelu_tanh"
    local, full = inverse_frequencies(spec, SLIDING), inverse_frequencies(spec, FULL)
    assert np.isclose(local[1], 10000 ** (-2 / 256)) and np.isclose(full[1], 1e6 ** (-2 / 256))
    for refused in ({"final_logit_softcapping": 30.0}, {"use_bidirectional_attention": True}):
        with pytest.raises(ModelFormatError):
            spec_from_config({**config, **refused}, "variant")
