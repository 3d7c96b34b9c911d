"""The UI-agnostic chat (anechat/chat.py) on the real MLX engine and a real SQLite history:
what a person says is recorded before the model answers, answers are recorded as they
stream, and an old session comes back with its settings and warms the cache once."""

from __future__ import annotations

import pytest

from anechat.chat.controller import ChatController
from anechat.engines.base import CancelToken, GenerationStats, SamplingParams, TextDelta
from anechat.engines.errors import InvalidParameter, NotLoaded
from anechat.history import HistoryStore


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as s:
        yield s


def finish(events) -> GenerationStats:
    return [e for e in events if isinstance(e, GenerationStats)][-1]


def test_a_chat_is_recorded_with_its_model_engine_and_figures(tiny_model_dir, store):
    chat = ChatController(system_prompt="Be brief.", params=SamplingParams(max_tokens=6), history=store)
    chat.load(str(tiny_model_dir), "mlx")
    first = finish(chat.send("Hello"))
    finish(chat.send("And again"))

    record = store.get_session(chat.session_id)
    assert record.engine == "mlx" and record.model == str(tiny_model_dir)  # loaded by path: the path resolves again
    assert record.system_prompt == "Be brief."
    assert [m.role for m in record.messages] == ["user", "assistant", "user", "assistant"]
    assert record.messages[1].content == first.text
    assert record.messages[1].status == "complete"
    assert record.messages[1].stats["decode_tps"] >= 0


def test_the_users_message_is_stored_before_the_answer_starts(tiny_model_dir, store):
    chat = ChatController(params=SamplingParams(max_tokens=50), history=store)
    chat.load(str(tiny_model_dir), "mlx")
    events = chat.send("What is stored first?")
    first_delta = next(e for e in events if isinstance(e, TextDelta))
    assert first_delta is not None
    record = store.get_session(chat.session_id)
    assert record.messages[0].role == "user" and record.messages[0].content == "What is stored first?"
    assert record.messages[1].status == "partial"  # still streaming
    events.close()


def test_a_cancelled_answer_is_kept_as_partial(tiny_model_dir, store):
    chat = ChatController(params=SamplingParams(max_tokens=200), history=store)
    chat.load(str(tiny_model_dir), "mlx")
    cancel = CancelToken()
    stats = None
    for event in chat.send("Tell me a story", cancel):
        if isinstance(event, TextDelta) and event.figures.generation_tokens == 3:
            cancel.cancel()
        if isinstance(event, GenerationStats):
            stats = event
    assert stats.finish_reason == "cancelled"
    answer = store.get_session(chat.session_id).messages[-1]
    assert answer.status == "partial" and answer.content == stats.text


def test_an_opened_session_restores_settings_and_prefills_its_history_once(tiny_model_dir, store):
    params = SamplingParams(max_tokens=5, temperature=0.0, top_k=7)
    first = ChatController(system_prompt="You are terse.", params=params, history=store)
    first.load(str(tiny_model_dir), "mlx")
    finish(first.send("Hello"))
    sid = first.session_id
    first.unload()

    again = ChatController(history=store)
    model, engine = again.open_session(sid[:8])  # a unique prefix is enough
    assert (model, engine) == (str(tiny_model_dir), "mlx")
    assert again.state.system_prompt == "You are terse."
    assert again.state.params.top_k == 7
    assert [m.role for m in again.messages] == ["user", "assistant"]
    again.load(str(tiny_model_dir), engine)
    warm = finish(again.send("Next"))
    assert warm.cached_tokens == 0  # a fresh engine prefills the restored history once...
    reused = finish(again.send("And next"))
    assert reused.cached_tokens > 0  # ...and reuses it from then on
    assert len(store.get_session(sid).messages) == 6


def test_bad_input_gets_a_clear_error(tiny_model_dir):
    chat = ChatController()
    with pytest.raises(NotLoaded):
        list(chat.send("hi"))
    chat.load(str(tiny_model_dir), "mlx")
    with pytest.raises(InvalidParameter, match="empty"):
        list(chat.send("   "))
    with pytest.raises(InvalidParameter, match="unknown engine"):
        chat.load(str(tiny_model_dir), "npu")
    assert chat.messages == []  # nothing half-added
