"""The Core ML engine on the tiny model converted by anechat's converter.

Off macOS every part runs in the MIL executor (numpy), so these tests prove that
what the converter wrote to disk computes the same tokens as the source model.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml

pytest.importorskip("coremltools")

from anechat.engines.base import CancelToken, SamplingParams  # noqa: E402
from anechat.engines.coreml.engine import CoreMLEngine, shifted_prompt  # noqa: E402
from anechat.engines.errors import ModelFormatError, ModelNotFound  # noqa: E402

pytestmark = pytest.mark.coreml

#: a short system prompt (the tiny model's default one would fill most of its 64-token window)
SYSTEM = {"role": "system", "content": "Hi"}

PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "def add(a, b):",
]


def greedy_ids(session, prompt_ids, n=32) -> list[int]:
    events = list(session.generate_ids(prompt_ids, SamplingParams(max_tokens=n), ignore_eos=True))
    return [t for e in events[:-1] for t in e.token_ids]


def answer(session, messages, params=None, cancel=None):
    events = list(session.generate(messages, params or SamplingParams(max_tokens=6), cancel))
    return events[-1]


@pytest.fixture(scope="module")
def coreml(tiny_coreml_dir):
    engine = CoreMLEngine()
    session = engine.load(tiny_coreml_dir)
    yield session
    engine.unload()


@pytest.fixture(scope="module")
def mlx_session(tiny_model_dir):
    pytest.importorskip("mlx")
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    yield engine.load(tiny_model_dir)
    engine.unload()


def fresh(folder):
    return CoreMLEngine().load(folder)


def recomputed(folder, prompt_ids, max_tokens=6):
    """The answer a new session gives for the same token ids (nothing cached)."""
    return list(fresh(folder).generate_ids(prompt_ids, SamplingParams(max_tokens=max_tokens)))[-1]


# --- what runs, and what the user is told -----------------------------------------------


@pytest.mark.skipif(sys.platform == "darwin", reason="on macOS Core ML itself runs the model")
def test_off_macos_the_mil_executor_runs_it_and_says_so(coreml):
    avail = CoreMLEngine.available()
    assert avail.ok
    assert avail.runtime == "MIL on CPU — no Neural Engine here"
    assert coreml.info.extra["runtime"] == avail.runtime


def test_model_info_comes_from_meta_yaml(coreml, tiny_coreml_dir):
    meta = yaml.safe_load((tiny_coreml_dir / "meta.yaml").read_text())["model_info"]["parameters"]
    assert coreml.info.context_length == meta["context_length"] == 64
    assert coreml.info.extra["batch_size"] == meta["batch_size"]
    assert coreml.info.extra["chunks"] == 2
    assert coreml.info.quantization == "float16"


# --- fidelity --------------------------------------------------------------------------


def test_fp16_conversion_decodes_the_same_tokens_as_mlx(coreml, mlx_session):
    for text in PROMPTS:
        ids = coreml.tokenizer.encode(text)
        assert greedy_ids(coreml, ids) == greedy_ids(mlx_session, ids), text


def top1_agreement(coreml_session, mlx_session, sequences) -> float:
    """Teacher-forced: feed the same tokens to both and compare the argmax at every position."""
    import mlx.core as mx

    forward = coreml_session.forward
    agree = total = 0
    for ids in sequences:
        reference = np.array(mlx_session.model(mx.array([ids]))[0].astype(mx.float32))
        forward.reset()
        for pos, token in enumerate(ids):
            logits = forward.infer(token, pos)
            agree += int(np.argmax(logits) == np.argmax(reference[pos]))
            total += 1
    coreml_session.reset()
    return agree / total


def test_lut6_keeps_top1_agreement_with_the_source_above_90_percent(tiny_coreml_lut6_dir, mlx_session):
    lut6 = fresh(tiny_coreml_lut6_dir)
    rng = np.random.default_rng(0)
    vocab = lut6.tokenizer.vocab_size
    sequences = [rng.integers(3, vocab, size=32).tolist() for _ in range(4)]  # 128 positions
    assert top1_agreement(lut6, mlx_session, sequences) >= 0.90


# --- prefill, multi-turn, sampling, cancellation ----------------------------------------


@pytest.mark.parametrize("length", [15, 16, 17, 23, 33])
def test_batched_prefill_with_a_short_last_batch_matches_token_by_token(tiny_coreml_dir, length):
    batched, single = fresh(tiny_coreml_dir), fresh(tiny_coreml_dir)
    single.forward.has_prefill = False  # every prompt token through `infer`, one at a time
    ids = (batched.tokenizer.encode(" ".join(PROMPTS)) * 3)[:length]
    assert greedy_ids(batched, ids, 12) == greedy_ids(single, ids, 12)
    np.testing.assert_allclose(
        batched.forward.infer(ids[0], length), single.forward.infer(ids[0], length), rtol=1e-4, atol=1e-4
    )


def test_turn_two_prefills_only_the_new_tokens_and_answers_as_a_fresh_session(coreml, tiny_coreml_dir):
    coreml.reset()
    messages = [SYSTEM, {"role": "user", "content": "Hi"}]
    first = answer(coreml, messages)
    turn1_tokens = first.prompt_tokens + first.generation_tokens
    messages += [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Paris?"}]
    second = answer(coreml, messages)
    assert second.cached_tokens >= turn1_tokens - 1  # the whole first turn is reused
    assert second.prompt_tokens == coreml.count_tokens(messages) - second.cached_tokens
    # only the new tokens: "Paris?", the template around it, and the answer's last token (never fed)
    assert second.prompt_tokens == coreml.count_tokens(messages) - turn1_tokens + 1
    assert second.text == recomputed(tiny_coreml_dir, coreml.prompt_ids(messages)).text


def test_editing_history_trims_the_state_and_stays_correct(coreml, tiny_coreml_dir):
    coreml.reset()
    answer(coreml, [SYSTEM, {"role": "user", "content": "Write a haiku about the sea."}])
    edited = [SYSTEM, {"role": "user", "content": "Write a haiku about the dog."}]
    again = answer(coreml, edited)
    assert 0 < again.cached_tokens < coreml.count_tokens(edited)
    assert again.text == recomputed(tiny_coreml_dir, coreml.prompt_ids(edited)).text


def test_sampling_with_a_seed_is_reproducible(coreml):
    ids = coreml.tokenizer.encode(PROMPTS[0])

    def sample(seed):
        params = SamplingParams(temperature=1.0, top_p=0.95, top_k=50, min_p=0.02, repetition_penalty=1.1, seed=seed, max_tokens=16)
        return [t for e in list(coreml.generate_ids(ids, params, ignore_eos=True))[:-1] for t in e.token_ids]

    assert sample(7) == sample(7)
    assert any(sample(seed) != sample(7) for seed in (1, 2, 3))


def test_cancelled_generation_leaves_the_session_usable(coreml, tiny_coreml_dir):
    coreml.reset()
    cancel = CancelToken()
    messages = [SYSTEM, {"role": "user", "content": "Hi"}]
    seen = 0
    for event in coreml.generate(messages, SamplingParams(max_tokens=20), cancel):
        if hasattr(event, "finish_reason"):
            stats = event
        else:
            seen += 1
            if seen == 3:
                cancel.cancel()
    assert stats.finish_reason == "cancelled"
    assert stats.generation_tokens == 3
    follow_up = messages + [{"role": "assistant", "content": stats.text}, {"role": "user", "content": "Again?"}]
    reused = answer(coreml, follow_up)
    assert reused.finish_reason in ("length", "stop")
    assert reused.cached_tokens > 0
    assert reused.text == recomputed(tiny_coreml_dir, coreml.prompt_ids(follow_up)).text


def test_a_conversation_longer_than_the_window_is_shifted_not_refused(coreml):
    coreml.reset()
    long_story = " ".join(PROMPTS * 6)  # far more than the 64-token window
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": long_story}]
    stats = answer(coreml, messages, SamplingParams(max_tokens=8))
    assert stats.error is None and stats.generation_tokens > 0
    assert stats.context_tokens <= coreml.info.context_length


def test_shifted_prompt_keeps_the_system_prompt_and_the_recent_half():
    system = [1, 10, 11, 12, 2]  # ends with an end-of-turn token (2)
    history = list(range(100, 300))
    ids = system + history
    shifted = shifted_prompt(ids, limit=64, boundary_ids={2})
    assert shifted[: len(system)] == system
    assert shifted[len(system):] == history[-(32 - len(system)):]
    assert len(shifted) == 32


# --- errors ------------------------------------------------------------------------


def test_missing_and_foreign_folders_are_refused_with_typed_errors(tmp_path, tiny_model_dir):
    with pytest.raises(ModelNotFound):
        CoreMLEngine().load(tmp_path / "nope")
    with pytest.raises(ModelFormatError, match="no meta.yaml"):
        CoreMLEngine().load(tiny_model_dir)  # an MLX / Hugging Face folder, not Core ML


def test_memory_report_counts_the_loaded_weights(tiny_coreml_dir):
    engine = CoreMLEngine()
    engine.load(tiny_coreml_dir)
    report = engine.memory()
    assert report.model_bytes and report.model_bytes > 100_000
    engine.unload()
    assert engine.memory().model_bytes is None and engine.session is None


# --- the sampler ---------------------------------------------------------------------


def test_sampler_filters_follow_their_definitions():
    from anechat.engines.coreml.sampling import Sampler, apply_repetition_penalty, filtered_probs

    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], np.float32))
    assert np.count_nonzero(filtered_probs(logits, top_k=2)) == 2
    assert np.flatnonzero(filtered_probs(logits, top_p=0.7)).tolist() == [0, 1]  # 0.5 + 0.3 reaches 0.7
    assert np.flatnonzero(filtered_probs(logits, top_p=0.4)).tolist() == [0]
    assert np.flatnonzero(filtered_probs(logits, min_p=0.5)).tolist() == [0, 1]  # >= half of the top probability
    np.testing.assert_allclose(filtered_probs(logits, top_k=2), [0.625, 0.375, 0, 0], rtol=1e-6)
    penalised = apply_repetition_penalty(np.array([2.0, -1.0, 1.9]), [0, 1], 2.0)
    assert penalised.tolist() == [1.0, -2.0, 1.9]
    greedy = Sampler(SamplingParams(repetition_penalty=2.0), context_ids=[0])
    assert greedy(np.array([2.0, -1.0, 1.9])) == 2  # the penalty moved the argmax off the repeated token


def test_raw_id_prompts_longer_than_the_window_are_refused_not_shifted(coreml):
    from anechat.engines.errors import ContextOverflow

    with pytest.raises(ContextOverflow):
        coreml.generate_ids(list(range(5, 5 + coreml.info.context_length)), SamplingParams(max_tokens=4))


def test_an_answer_that_fills_the_window_finishes_with_length(coreml):
    limit = coreml.info.context_length
    stats = list(coreml.generate_ids(list(range(5, 5 + limit - 4)), SamplingParams(max_tokens=32), ignore_eos=True))[-1]
    assert (stats.finish_reason, stats.error) == ("length", None)
    assert stats.generation_tokens == 4 and stats.context_tokens <= limit
    assert list(coreml.generate_ids([5, 6, 7], SamplingParams(max_tokens=3), ignore_eos=True))[-1].generation_tokens == 3
