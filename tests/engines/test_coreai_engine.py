"""The Core AI engine on the tiny llama converted by anechat's converter, run by Apple's
runtime (on Linux: the CPU build of coreai-core). Its tokens must equal the MLX engine's."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("coreai.runtime")


from anechat.engines.base import CancelToken, SamplingParams  # noqa: E402
from anechat.engines.coreai.engine import CoreAIEngine  # noqa: E402
from anechat.engines.errors import ModelFormatError, ModelNotFound  # noqa: E402

SYSTEM = {"role": "system", "content": "Hi"}
PROMPTS = ["The quick brown fox jumps over the lazy dog.", "What is the capital of France?", "def add(a, b):"]


@pytest.fixture(scope="module")
def engine_and_session(tiny_coreai_dir):
    engine = CoreAIEngine()
    session = engine.load(tiny_coreai_dir)
    yield engine, session
    engine.unload()


@pytest.fixture
def coreai(engine_and_session):
    session = engine_and_session[1]
    session.reset()
    return session


@pytest.fixture(scope="module")
def mlx_session(tiny_model_dir):
    pytest.importorskip("mlx")
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    yield engine.load(tiny_model_dir)
    engine.unload()


def greedy_ids(session, prompt_ids, n=32) -> list[int]:
    events = list(session.generate_ids(prompt_ids, SamplingParams(max_tokens=n), ignore_eos=True))
    return [t for e in events[:-1] for t in e.token_ids]


def answer(session, messages, params=None, cancel=None):
    return list(session.generate(messages, params or SamplingParams(max_tokens=6), cancel))[-1]


def recomputed(folder, prompt_ids, max_tokens=6):
    """The answer a new session gives for the same token ids (nothing cached)."""
    engine = CoreAIEngine()
    stats = list(engine.load(folder).generate_ids(prompt_ids, SamplingParams(max_tokens=max_tokens)))[-1]
    engine.unload()
    return stats


def test_it_says_honestly_where_it_runs(coreai):
    avail = CoreAIEngine.available()
    assert avail.ok
    if sys.platform != "darwin":
        assert avail.runtime == "Apple Core AI runtime on CPU"
    assert coreai.info.extra["runtime"] == avail.runtime
    assert coreai.info.quantization == "fp32"
    assert coreai.info.context_length == 128


def test_fp32_greedy_tokens_equal_the_mlx_engines(coreai, mlx_session):
    for text in PROMPTS:
        ids = coreai.tokenizer.encode(text)
        assert greedy_ids(coreai, ids) == greedy_ids(mlx_session, ids), text


def test_a_long_prompt_prefills_in_several_batches_and_matches_mlx(coreai, mlx_session):
    ids = coreai.tokenizer.encode(" ".join(PROMPTS * 3))[:53]  # 52 prefilled: 3 full batches of 16 + a padded one
    assert len(ids) == 53
    assert greedy_ids(coreai, ids, 16) == greedy_ids(mlx_session, ids, 16)
    assert coreai.last_stats.prompt_tokens == 53


def test_turn_two_prefills_only_its_new_tokens(coreai, tiny_coreai_dir):
    messages = [SYSTEM, {"role": "user", "content": "Hi"}]
    first = answer(coreai, messages)
    follow_up = messages + [{"role": "assistant", "content": first.text}, {"role": "user", "content": "And then?"}]
    second = answer(coreai, follow_up)
    total = len(coreai.prompt_ids(follow_up))
    assert second.cached_tokens > 0
    assert second.prompt_tokens == total - second.cached_tokens
    assert second.prompt_tokens < total // 2
    assert second.text == recomputed(tiny_coreai_dir, coreai.prompt_ids(follow_up)).text


def test_an_edited_history_trims_the_cache_and_still_answers_as_a_fresh_session(coreai, tiny_coreai_dir):
    answer(coreai, [SYSTEM, {"role": "user", "content": "The quick brown fox"}])
    edited = [SYSTEM, {"role": "user", "content": "The lazy dog"}]
    stats = answer(coreai, edited)
    assert stats.text == recomputed(tiny_coreai_dir, coreai.prompt_ids(edited)).text


def test_cancel_at_any_token_then_the_session_reuses_its_cache(coreai, tiny_coreai_dir):
    messages = [SYSTEM, {"role": "user", "content": "Hi"}]
    cancel, seen = CancelToken(), 0
    for event in coreai.generate(messages, SamplingParams(max_tokens=20), cancel):
        if hasattr(event, "finish_reason"):
            stats = event
        else:
            seen += 1
            if seen == 3:
                cancel.cancel()
    assert stats.finish_reason == "cancelled" and stats.generation_tokens == 3
    follow_up = messages + [{"role": "assistant", "content": stats.text}, {"role": "user", "content": "Again?"}]
    reused = answer(coreai, follow_up)
    assert reused.cached_tokens > 0
    assert reused.text == recomputed(tiny_coreai_dir, coreai.prompt_ids(follow_up)).text


def test_sampling_with_a_seed_repeats_and_figures_are_reported(coreai):
    params = SamplingParams(temperature=0.9, top_p=0.9, top_k=50, seed=7, max_tokens=10)
    ids = coreai.tokenizer.encode(PROMPTS[0])
    first = list(coreai.generate_ids(ids, params, ignore_eos=True))
    coreai.reset()
    second = list(coreai.generate_ids(ids, params, ignore_eos=True))
    assert [e.token_ids for e in first[:-1]] == [e.token_ids for e in second[:-1]]
    stats = second[-1]
    assert stats.generation_tokens == 10 and stats.ttft_s > 0 and stats.prefill_tps > 0 and stats.decode_tps > 0


def test_the_memory_snapshot_names_weights_kv_state_and_runtime(engine_and_session):
    engine, session = engine_and_session
    answer(session, [SYSTEM, {"role": "user", "content": "Hi"}])
    report = engine.memory()
    assert report.model_bytes and report.model_bytes > 0
    assert report.cache_bytes == 2 * 2 * 2 * 128 * 16 * 4  # k+v, 2 layers, 2 kv heads, 128 positions, head_dim 16, fp32
    assert report.details["runtime"] == session.info.extra["runtime"]


def test_a_folder_that_is_not_a_coreai_model_is_refused_in_one_line(tmp_path, tiny_model_dir):
    with pytest.raises(ModelNotFound):
        CoreAIEngine().load(tmp_path / "missing")
    with pytest.raises(ModelFormatError, match="not a Core AI model folder"):
        CoreAIEngine().load(tiny_model_dir)


def test_a_manifest_with_a_bad_field_is_refused(tmp_path, tiny_coreai_dir):
    import json
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny_coreai_dir, bad)
    data = json.loads((bad / "coreai.json").read_text())
    data["context_length"] = -1
    (bad / "coreai.json").write_text(json.dumps(data))
    with pytest.raises(ModelFormatError, match="context_length"):
        CoreAIEngine().load(bad)


CYCLE = textwrap.dedent(
    """
    import sys
    from anechat.engines.base import SamplingParams
    from anechat.engines.coreai.engine import CoreAIEngine
    session = CoreAIEngine().load(sys.argv[1])
    events = list(session.generate([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=4)))
    print(events[-1].finish_reason)
    """
)


def run_cycles(folder, n: int) -> list[int]:
    """Load -> generate -> exit (without unloading) in ``n`` fresh interpreters; their exit codes."""
    codes = []
    for _ in range(n):
        done = subprocess.run([sys.executable, "-c", CYCLE, str(folder)], capture_output=True, text=True, timeout=120)
        codes.append(done.returncode)
        assert done.stdout.strip() in ("length", "stop"), done.stderr[-2000:]
    return codes


@pytest.mark.slow
def test_twenty_load_generate_exit_cycles_all_exit_0(tiny_coreai_dir):
    assert run_cycles(tiny_coreai_dir, 20) == [0] * 20


def test_released_runtime_refuses_calls_instead_of_aborting(tiny_coreai_dir):
    from anechat.engines.errors import EngineError

    session = CoreAIEngine().load(tiny_coreai_dir)
    session.close()  # what the atexit hook does to every live model
    with pytest.raises(EngineError, match="released"):
        session.runtime.infer(1, 0)
