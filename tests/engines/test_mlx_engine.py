"""The MLX engine, on tiny random-weight llama models made at test time.

What a caller sees: a turn streams text deltas then one GenerationStats; the KV
cache is kept between turns so a follow-up only prefills what is new; edits,
cancellation and stop tokens leave the cache consistent (proved by comparing
with a fresh session's greedy answer); bad folders and bad parameters become
typed errors; and the engine can run in a worker thread.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import threading

import pytest

from anechat.engines.base import CancelToken, GenerationStats, SamplingParams, TextDelta
from anechat.engines.errors import ContextOverflow, InvalidParameter, ModelFormatError, ModelNotFound, OutOfMemory
from anechat.engines.registry import availability

pytestmark = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")

GREEDY = SamplingParams(max_tokens=12)
GREEDY_LONG = SamplingParams(max_tokens=40)
HELLO = [{"role": "user", "content": "Hello! What is the capital of France?"}]


def load(path, **kwargs):
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    return engine, engine.load(path, **kwargs)


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    engine, session = load(tiny_model_dir)
    yield session
    engine.unload()


@pytest.fixture
def session(tiny):
    """The shared tiny session, with an empty cache."""
    tiny.reset()
    return tiny


def run(session, messages, params=GREEDY, cancel=None):
    events = list(session.generate(messages, params, cancel))
    *deltas, stats = events
    assert all(isinstance(d, TextDelta) for d in deltas) and isinstance(stats, GenerationStats)
    return deltas, stats


def fresh_answer(model_dir, messages, params=GREEDY):
    """What a newly loaded session answers (nothing cached)."""
    engine, other = load(model_dir)
    try:
        return run(other, messages, params)[1].text
    finally:
        engine.unload()


def two_turns(session):
    _, first = run(session, HELLO)
    return HELLO + [{"role": "assistant", "content": first.text}, {"role": "user", "content": "Tell me more."}], first


def test_available_names_the_runtime():
    avail = availability("mlx")
    assert avail.ok and avail.runtime.startswith("MLX · ")


@pytest.mark.parametrize("missing", ["mlx_lm", "mlx.core"])
def test_without_mlx_available_says_what_to_install(monkeypatch, missing):
    from anechat.engines.mlx.engine import MLXEngine

    monkeypatch.setitem(sys.modules, missing, None)  # what an uninstalled package looks like to import
    avail = MLXEngine.available()
    assert not avail.ok and "pip install" in avail.reason


def test_load_describes_the_model(session, tiny_model_dir):
    info = session.info
    assert (info.name, info.architecture, info.context_length) == ("tiny-llama", "LlamaForCausalLM", 512)
    assert info.quantization == "float32" and info.vocab_size == 384
    # 2 layers of hidden 64 + embeddings + untied head
    assert info.parameters == 2 * (4 * 64 * 64 - 2 * 64 * 32 + 3 * 64 * 128 + 2 * 64) + 2 * 384 * 64 + 64


def test_a_turn_streams_deltas_then_one_final_stats(session):
    events = list(session.generate(HELLO, GREEDY))
    assert all(isinstance(e, TextDelta) for e in events[:-1]) and isinstance(events[-1], GenerationStats)
    stats = events[-1]
    deltas = events[:-1]
    assert stats.finish_reason == "length" and stats.generation_tokens == 12
    assert stats.prompt_tokens == session.count_tokens(HELLO) and stats.cached_tokens == 0
    assert stats.ttft_s > 0 and stats.prefill_tps > 0 and stats.decode_tps > 0
    assert stats.peak_memory_bytes > 0
    assert "".join(d.text for d in deltas) == stats.text
    assert [t for d in deltas for t in d.token_ids] == list(session._cached_ids[stats.prompt_tokens :])
    assert [d.figures.generation_tokens for d in deltas if d.token_ids] == list(range(1, 13))


def test_every_delta_carries_the_engines_ttft_and_running_decode_rate(session):
    events = list(session.generate(HELLO, GREEDY))
    *deltas, stats = events
    figures = [d.figures for d in deltas]
    # TTFT, prefill and the prompt are known from the first token on and never change
    assert {(f.ttft_s, f.prefill_tps, f.prompt_tokens, f.cached_tokens) for f in figures} == {
        (stats.ttft_s, stats.prefill_tps, stats.prompt_tokens, stats.cached_tokens)
    }
    # the decode rate runs: none after one token, a rate from the second on
    assert figures[0].decode_tps == 0.0 and all(f.decode_tps > 0 for f in figures[1:])
    # without a stop token the last delta's figures are the final ones, exactly
    assert stats.finish_reason == "length" and figures[-1] == stats.figures


def test_stop_token_ends_the_turn(tiny_stop_model_dir):
    engine, session = load(tiny_stop_model_dir)
    _, stats = run(session, HELLO)
    assert stats.finish_reason == "stop" and stats.generation_tokens == 1 and stats.text == ""
    # the stop token stays in the cache, exactly once
    assert session.cached_tokens == session._cache_length() == stats.prompt_tokens + 1
    engine.unload()


def test_max_tokens_ends_the_turn_with_length(session):
    _, stats = run(session, HELLO, GREEDY.with_(max_tokens=3))
    assert (stats.finish_reason, stats.generation_tokens) == ("length", 3)
    assert session.cached_tokens == session._cache_length() == stats.prompt_tokens + 3


def test_cancel_midway_keeps_the_cache_consistent(session, tiny_model_dir):
    cancel = CancelToken()
    seen = 0
    for event in session.generate(HELLO, GREEDY_LONG, cancel):
        if isinstance(event, TextDelta) and event.token_ids:
            seen += 1
            if seen == 4:
                cancel.cancel()
        stats = event
    assert stats.finish_reason == "cancelled" and stats.generation_tokens == 4
    assert session.cached_tokens == session._cache_length() == stats.prompt_tokens + 4
    # the next turn answers exactly as a session that never saw the cancelled turn
    follow_up = HELLO + [{"role": "assistant", "content": stats.text}, {"role": "user", "content": "Go on."}]
    assert run(session, follow_up)[1].text == fresh_answer(tiny_model_dir, follow_up)


def test_closing_the_stream_early_counts_as_cancelled(session):
    stream = session.generate(HELLO, GREEDY_LONG)
    next(stream), next(stream)
    stream.close()
    assert session.cached_tokens == session._cache_length()
    assert run(session, HELLO)[1].finish_reason == "length"


def test_a_cancel_before_the_first_token_generates_nothing(session):
    cancel = CancelToken()
    cancel.cancel()
    _, stats = run(session, HELLO, cancel=cancel)
    assert (stats.finish_reason, stats.generation_tokens) == ("cancelled", 0)


def test_second_turn_prefills_only_the_new_tokens(session):
    conversation, first = two_turns(session)
    _, second = run(session, conversation)
    assert second.cached_tokens == first.prompt_tokens + first.generation_tokens
    assert second.prompt_tokens == session.count_tokens(conversation) - second.cached_tokens
    # what is new: the end of the answer and the follow-up question
    tail = "<|im_end|>\n<|im_start|>user\nTell me more.<|im_end|>\n<|im_start|>assistant\n"
    assert second.prompt_tokens == len(session.tokenizer.encode(tail))


def test_cache_reuse_gives_the_same_greedy_answer_as_prefilling_everything(session):
    conversation, _ = two_turns(session)
    reused = run(session, conversation)[1]
    session.reset()
    refilled = run(session, conversation)[1]
    assert reused.cached_tokens > 0 and refilled.cached_tokens == 0
    assert reused.text == refilled.text


def test_editing_an_earlier_turn_trims_the_cache(session, tiny_model_dir):
    conversation, first = two_turns(session)
    run(session, conversation)
    edited = [{"role": "user", "content": "Hello! What is the capital of Zürich?"}] + conversation[1:]
    _, stats = run(session, edited)
    assert 0 < stats.cached_tokens < first.prompt_tokens  # kept the shared system prompt only
    assert stats.text == fresh_answer(tiny_model_dir, edited)


def test_an_opened_session_shares_the_weights_and_keeps_its_own_cache(tiny_model_dir):
    engine, first = load(tiny_model_dir)
    try:
        second = engine.open_session()
        assert second.model is first.model and second.cached_tokens == 0
        conversation, answered = two_turns(first)
        other = [{"role": "user", "content": "Something else entirely, please."}]
        _, elsewhere = run(second, other)
        assert elsewhere.cached_tokens == 0 and elsewhere.text == fresh_answer(tiny_model_dir, other)
        assert first.reusable_tokens(conversation) == answered.prompt_tokens + answered.generation_tokens
        assert second.reusable_tokens(conversation) < first.reusable_tokens(conversation)
        _, followed = run(first, conversation)  # the other session's turn left this cache alone
        assert followed.cached_tokens == answered.prompt_tokens + answered.generation_tokens
        assert engine.memory().details["kv_cache_tokens"] == first.cached_tokens + second.cached_tokens
        engine.unload()
        assert second.model is None and second.cached_tokens == 0
    finally:
        engine.unload()


def test_opening_a_session_without_a_loaded_model_is_not_loaded():
    from anechat.engines.errors import NotLoaded
    from anechat.engines.mlx.engine import MLXEngine

    with pytest.raises(NotLoaded):
        MLXEngine().open_session()


def test_repetition_penalty_covers_the_cached_context(session):
    strong = SamplingParams(max_tokens=12, repetition_penalty=3.0, repetition_context=512)
    conversation, _ = two_turns(session)
    with_cache = run(session, conversation, strong)[1]
    session.reset()
    without_cache = run(session, conversation, strong)[1]
    session.reset()
    unpenalised = run(session, conversation)[1]
    assert with_cache.cached_tokens > 0
    assert with_cache.text == without_cache.text != unpenalised.text


def test_seeded_sampling_is_reproducible(session):
    hot = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=16, seed=7)
    a = run(session, HELLO, hot)[1].text
    b = run(session, HELLO, hot)[1].text
    c = run(session, HELLO, hot.with_(seed=8))[1].text
    assert a == b != c


def test_deltas_never_split_a_utf8_character(session):
    saw_multibyte = False
    for seed in range(4):
        deltas, stats = run(session, HELLO, SamplingParams(temperature=1.5, max_tokens=40, seed=seed))
        texts = [d.text for d in deltas]
        assert all(not t.endswith("\ufffd") for t in texts)
        assert "".join(texts) == stats.text
        saw_multibyte |= any(ord(ch) > 127 and ch != "\ufffd" for ch in stats.text)
    assert saw_multibyte  # the random model did produce multi-byte characters


def test_generation_stops_at_the_context_limit(tiny_model_dir):
    engine, session = load(tiny_model_dir, context_length=64)
    prompt = session.count_tokens(HELLO)
    _, stats = run(session, HELLO, GREEDY_LONG.with_(max_tokens=200))
    assert stats.finish_reason == "length" and stats.generation_tokens == 64 - prompt
    with pytest.raises(ContextOverflow):
        session.generate([{"role": "user", "content": "The quick brown fox jumps over the lazy dog. " * 8}])
    engine.unload()


@pytest.mark.parametrize(
    "bad",
    [dict(temperature=-1), dict(top_p=0), dict(top_k=-1), dict(min_p=1.0), dict(repetition_penalty=0), dict(max_tokens=0), dict(seed=-3)],
)
def test_invalid_sampling_parameters_are_refused(session, bad):
    with pytest.raises(InvalidParameter):
        session.generate(HELLO, SamplingParams(**bad))


def test_invalid_conversations_are_refused(session):
    with pytest.raises(InvalidParameter):
        session.generate([])
    with pytest.raises(InvalidParameter):
        session.generate([{"role": "robot", "content": "beep"}])


def test_memory_report(tiny_model_dir):
    engine, session = load(tiny_model_dir)
    run(session, HELLO)
    report = engine.memory()
    assert report.model_bytes == session.info.extra["weights_bytes"] == 4 * session.info.parameters
    assert report.peak_bytes > 0 and report.active_bytes >= report.model_bytes
    assert report.details["kv_cache_tokens"] == session.cached_tokens > 0
    engine.unload()
    assert engine.session is None and engine.memory().model_bytes is None


def test_memory_reports_are_snapshots_the_engine_takes_on_its_own_thread(tiny_model_dir):
    """A gauges worker may read memory() while the engine thread generates: it reads the
    snapshot; the backend is only asked (measure_memory) on the engine's thread."""
    from anechat.engines.mlx.engine import MLXEngine

    class Watched(MLXEngine):
        measured_on: list[int] = []

        def measure_memory(self):
            self.measured_on.append(threading.get_ident())
            return super().measure_memory()

    engine = Watched()
    assert engine.memory().model_bytes is None  # nothing loaded, nothing measured
    seen, box = [], {}
    turn_over = threading.Event()

    def engine_thread():
        session = engine.load(tiny_model_dir)
        box["loaded"] = engine.memory()
        box["stats"] = run(session, HELLO, GREEDY_LONG)[1]
        box["tokens"] = session.cached_tokens
        turn_over.set()

    worker = threading.Thread(target=engine_thread)
    worker.start()
    while not turn_over.wait(0.002):  # this thread reads while that one loads and generates
        seen.append(engine.memory())
    worker.join(120)
    assert set(engine.measured_on) == {worker.ident}, "the backend was asked from another thread"
    assert len(engine.measured_on) >= 3  # at load, after the first token, at the end of the turn
    assert box["loaded"].model_bytes and box["loaded"].details["kv_cache_tokens"] == 0
    final = engine.memory()
    assert final.details["kv_cache_tokens"] == box["tokens"] > 0  # the end-of-turn snapshot
    assert engine.memory() is final  # reading takes no new measurement
    assert all(r.details.get("kv_cache_tokens", 0) <= box["tokens"] for r in seen)


# -- weight formats ---------------------------------------------------------------


def _rewrite_weights(src, dst, *, dtype="bfloat16", quantize_bits=None):
    """A copy of a model folder with 16-bit (and optionally 4-bit quantized) weights, as mlx-lm writes them."""
    import mlx.core as mx
    import mlx.nn as nn
    from mlx.utils import tree_flatten
    from mlx_lm.utils import load_model

    shutil.copytree(src, dst)
    model, config = load_model(dst)
    if quantize_bits:
        nn.quantize(model, group_size=64, bits=quantize_bits)
        _edit_config(dst, quantization={"group_size": 64, "bits": quantize_bits})
    weights = {k: v.astype(getattr(mx, dtype)) if v.dtype == mx.float32 else v for k, v in tree_flatten(model.parameters())}
    mx.save_safetensors(str(dst / "model.safetensors"), weights, metadata={"format": "mlx"})
    return dst


def test_16_bit_weights_run_in_float32_on_the_cpu(tiny_model_dir, tmp_path):
    engine, session = load(_rewrite_weights(tiny_model_dir, tmp_path / "bf16"))
    assert session.info.quantization == "float32" and session.info.extra["cast_from"] == "bfloat16"
    assert run(session, HELLO)[1].generation_tokens == 12
    engine.unload()


def test_quantized_weights_load_with_their_quantization(tiny_model_dir, tmp_path):
    engine, session = load(_rewrite_weights(tiny_model_dir, tmp_path / "q4", dtype="float16", quantize_bits=4))
    info = session.info
    assert info.quantization == "4-bit g64" and info.extra["dtype"] == "float32"  # scales cast for the CPU
    assert info.parameters == load(tiny_model_dir)[1].info.parameters
    assert engine.memory().model_bytes < 4 * info.parameters / 3  # far smaller than float32
    assert run(session, HELLO)[1].generation_tokens == 12
    engine.unload()


# -- loading errors ---------------------------------------------------------------


@pytest.fixture
def copy_of(tiny_model_dir, tmp_path):
    def make(name="broken"):
        return shutil.copytree(tiny_model_dir, tmp_path / name)

    return make


def test_missing_folder_is_model_not_found(tmp_path):
    with pytest.raises(ModelNotFound, match="no model at"):
        load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda d: (d / "config.json").unlink(), "has no config.json"),
        (lambda d: (d / "model.safetensors").unlink(), "has no model.*safetensors"),
        (lambda d: (d / "tokenizer.json").unlink(), "has no tokenizer.json"),
        (lambda d: (d / "config.json").write_text("{oops"), "config.json is not valid JSON"),
        (lambda d: _edit_config(d, model_type="no_such_arch"), "model_type 'no_such_arch' is not supported"),
        (lambda d: _edit_config(d, hidden_size=32), "do not match its config.json"),
        (lambda d: _truncate(d / "model.safetensors"), r"model.safetensors is truncated"),
        (lambda d: (d / "model.safetensors").write_bytes(b"\xff" * 64), "not a readable safetensors file"),
    ],
    ids=["no-config", "no-weights", "no-tokenizer", "bad-json", "unknown-arch", "shape-mismatch", "truncated", "garbage"],
)
def test_broken_folders_raise_format_errors_that_name_the_problem(copy_of, breakage, message):
    folder = copy_of()
    breakage(folder)
    with pytest.raises(ModelFormatError, match=message):
        load(folder)


def test_a_core_ml_folder_is_pointed_to_the_coreml_engine(tmp_path):
    (tmp_path / "meta.yaml").write_text("model_info: {}\n")
    with pytest.raises(ModelFormatError, match="coreml engine"):
        load(tmp_path)


def test_a_model_larger_than_memory_is_refused_before_reading_it(copy_of):
    import psutil

    folder = copy_of()
    rows = psutil.virtual_memory().total // (64 * 4) + 1024  # one float32 tensor bigger than RAM
    header = json.dumps({"model.embed_tokens.weight": {"dtype": "F32", "shape": [rows, 64], "data_offsets": [0, rows * 256]}}).encode()
    weights = folder / "model.safetensors"
    with open(weights, "wb") as fh:
        fh.write(len(header).to_bytes(8, "little") + header)
        fh.truncate(8 + len(header) + rows * 256)  # sparse: takes no disk space
    with pytest.raises(OutOfMemory, match="GiB but this machine has"):
        load(folder)


def test_mlx_allocation_failures_are_recognised_as_out_of_memory():
    from anechat.engines.mlx.runtime import is_out_of_memory

    assert is_out_of_memory(MemoryError())
    assert is_out_of_memory(RuntimeError("[metal::malloc] Attempting to allocate 9000000000 bytes which is greater than the maximum"))
    assert is_out_of_memory(RuntimeError("[malloc] Unable to allocate 123 bytes."))
    assert not is_out_of_memory(RuntimeError("[matmul] Last dimension of first input with shape (1,4) must match"))


def _edit_config(folder, **changes):
    config = json.loads((folder / "config.json").read_text())
    config.update(changes)
    (folder / "config.json").write_text(json.dumps(config))


def _truncate(file):
    data = file.read_bytes()
    file.write_bytes(data[: len(data) * 2 // 3])


# -- threads ----------------------------------------------------------------------


def test_a_turn_runs_in_a_worker_thread(session):
    expected = run(session, HELLO)[1].text
    session.reset()
    box = {}
    worker = threading.Thread(target=lambda: box.update(stats=run(session, HELLO)[1]))
    worker.start()
    worker.join(60)
    assert box["stats"].text == expected


def test_the_process_exits_cleanly_after_worker_thread_turns(tiny_model_dir):
    """MLX can abort at interpreter exit after a worker thread used a thread-local stream."""
    script = textwrap.dedent(
        f"""
        import threading
        from anechat.engines.threads import release_engine_thread
        from anechat.engines.mlx.engine import MLXEngine
        box = {{}}
        def work():
            session = MLXEngine().load({str(tiny_model_dir)!r})
            for event in session.generate([{{"role": "user", "content": "Hi"}}]):
                pass
            release_engine_thread()  # what the app's engine thread does when it closes ...
            for event in session.generate([{{"role": "user", "content": "Hi again"}}]):
                pass
            box["session"], box["finish"] = session, event.finish_reason
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
        for event in box["session"].generate([{{"role": "user", "content": "From main"}}]):
            pass
        print(box["finish"], event.finish_reason)
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["length", "length"]
