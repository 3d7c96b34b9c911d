"""The sessions `anechat api` keeps per model (anechat.api.sessions), on real tiny models:
which session a prompt goes to, when a new one opens, which one is given up, and the
one shared session of an engine that holds a single state (Core ML)."""

from __future__ import annotations

import pytest

from anechat.api.sessions import SessionLRU
from anechat.engines.base import SamplingParams

SHORT = SamplingParams(max_tokens=4)


def conversation(topic: str) -> list[dict]:
    return [{"role": "system", "content": f"You help with {topic}."}, {"role": "user", "content": f"Tell me about {topic}."}]


def answer(sessions: SessionLRU, messages: list[dict]):
    """Pick a session for ``messages`` and run a turn on it: (session, final stats)."""
    session = sessions.pick(messages)
    *_, stats = session.generate(messages, SHORT)
    return session, stats


def grown(messages: list[dict], stats) -> list[dict]:
    return messages + [{"role": "assistant", "content": stats.text}, {"role": "user", "content": "And then?"}]


@pytest.fixture
def mlx(tiny_model_dir):
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    first = engine.load(tiny_model_dir)
    yield engine, first
    engine.unload()


def test_a_new_conversation_opens_a_new_session_and_a_grown_one_returns_to_its_own(mlx):
    engine, first = mlx
    sessions = SessionLRU(engine, first, 3)
    garden, garden_stats = answer(sessions, conversation("gardening"))
    stars, _ = answer(sessions, conversation("astronomy"))
    assert garden is first and stars is not first and len(sessions.sessions) == 2
    again, stats = answer(sessions, grown(conversation("gardening"), garden_stats))
    assert again is garden and stats.cached_tokens >= garden_stats.prompt_tokens


def test_a_regenerated_answer_stays_on_its_session(mlx):
    engine, first = mlx
    sessions = SessionLRU(engine, first, 3)
    messages = conversation("cooking")
    answer(sessions, messages)
    again, stats = answer(sessions, messages)
    assert again is first and len(sessions.sessions) == 1 and stats.cached_tokens > 0


def test_when_full_the_least_recently_used_session_is_given_up(mlx):
    engine, first = mlx
    sessions = SessionLRU(engine, first, 2)
    oldest, _ = answer(sessions, conversation("gardening"))
    newer, _ = answer(sessions, conversation("astronomy"))
    third, _ = answer(sessions, conversation("sailing"))
    assert third is oldest and len(sessions.sessions) == 2
    assert sessions.sessions == [newer, third]  # most recently used last


def test_an_engine_with_one_state_shares_its_session(tiny_coreml_dir):
    from anechat.engines.coreml.engine import CoreMLEngine

    engine = CoreMLEngine()
    if not engine.available().ok:
        pytest.skip(engine.available().reason)
    first = engine.load(tiny_coreml_dir)
    try:
        sessions = SessionLRU(engine, first, 4)
        assert answer(sessions, conversation("gardening"))[0] is first
        assert answer(sessions, conversation("astronomy"))[0] is first
        assert sessions.size == 1 and sessions.sessions == [first]
    finally:
        engine.unload()
