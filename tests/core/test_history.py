"""Chat history: what a chat loop stores, what a person finds again, and how a
damaged or unwritable database is handled. Real SQLite files in a temp folder.

(Killing a process mid-answer and two processes at once: test_history_processes.py.
The `anechat history` commands: test_history_cli.py.)
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from anechat.engines.base import GenerationStats, SamplingParams
from anechat.history import (
    AmbiguousSession,
    HistoryStore,
    InvalidInput,
    UnknownMessage,
    UnknownSession,
    default_path,
)

ESC = "\x1b"


def stats(finish_reason="stop", **kw) -> GenerationStats:
    base = dict(prompt_tokens=12, generation_tokens=5, ttft_s=0.05, prefill_tps=240.0, decode_tps=50.0,
                peak_memory_bytes=1 << 20, finish_reason=finish_reason, text="ignored: the message holds it")
    return GenerationStats(**{**base, **kw})


@pytest.fixture
def store(tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as s:
        yield s


def other_connection(store) -> sqlite3.Connection:
    """A second, independent reader: sees only what was committed to the file."""
    return sqlite3.connect(store.path)


def chat_turn(store, sid, prompt, answer, **finish):
    store.add_user_message(sid, prompt)
    mid = store.begin_answer(sid)
    store.append_answer(mid, answer)
    store.finish_answer(mid, **({"stats": stats()} | finish))
    return mid


# -- the database itself ----------------------------------------------------------


def test_the_default_database_lives_in_anechats_data_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    assert default_path() == tmp_path / "data" / "history.sqlite3"
    with HistoryStore() as s:
        assert s.path == tmp_path / "data" / "history.sqlite3" and s.persistent and s.warning is None
    assert (tmp_path / "data" / "history.sqlite3").is_file()


def test_the_database_uses_wal_foreign_keys_a_busy_timeout_and_a_schema_version(store):
    from anechat.history.schema import SCHEMA_VERSION

    db = store._conn
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert db.execute("PRAGMA busy_timeout").fetchone()[0] >= 1000
    assert other_connection(store).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 1


def test_importing_history_pulls_in_no_ui_or_ml_library():
    code = ("import sys, anechat.history, anechat.cli.history, anechat.safe_text\n"
            "print([m for m in ('textual', 'mlx', 'torch', 'coremltools', 'numpy') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


# -- a session, as a chat loop writes it -------------------------------------------


def test_a_session_restores_model_engine_system_prompt_and_parameters(store):
    params = SamplingParams(temperature=0.7, top_p=0.9, seed=3, max_tokens=64)
    sid = store.new_session("smollm2-135m", "mlx", "You are terse.", params)
    record = store.get_session(sid)
    assert (record.model, record.engine, record.system_prompt) == ("smollm2-135m", "mlx", "You are terse.")
    assert record.params["temperature"] == 0.7 and record.sampling_params() == params
    store.update_session(sid, engine="coreml", params={"temperature": 0.0})
    record = store.get_session(sid)
    assert record.engine == "coreml" and record.model == "smollm2-135m"
    assert record.sampling_params() == SamplingParams(temperature=0.0)


def test_the_users_message_is_committed_before_the_answer_starts(store):
    sid = store.new_session("m", "mlx")
    store.add_user_message(sid, "What is the ANE?")
    # another process (here: another connection) already sees it
    rows = other_connection(store).execute("SELECT role, content FROM messages").fetchall()
    assert rows == [("user", "What is the ANE?")]


def test_an_answer_is_partial_until_finished_and_streamed_text_is_written_in_batches(tmp_path):
    with HistoryStore(tmp_path / "h.sqlite3", flush_interval_s=3600, flush_chars=10) as s:
        sid = s.new_session("m", "mlx")
        s.add_user_message(sid, "count")
        mid = s.begin_answer(sid)
        saved = lambda: other_connection(s).execute(  # noqa: E731
            "SELECT content, status FROM messages WHERE id = ?", (mid,)).fetchone()
        assert saved() == ("", "partial")
        assert s.append_answer(mid, "one ") is False  # gathered, not written yet
        assert saved() == ("", "partial")
        assert s.append_answer(mid, "two three ") is True  # 14 characters >= 10: written
        assert saved() == ("one two three ", "partial")
        s.append_answer(mid, "four")
        s.finish_answer(mid, stats=stats())
        assert saved() == ("one two three four", "complete")


def test_with_a_zero_interval_every_piece_is_written_at_once(tmp_path):
    with HistoryStore(tmp_path / "h.sqlite3", flush_interval_s=0) as s:
        mid = s.begin_answer(s.new_session())
        assert s.append_answer(mid, "a") and s.append_answer(mid, "b")
        assert other_connection(s).execute("SELECT content FROM messages").fetchone() == ("ab",)


@pytest.mark.parametrize(
    "finish_reason, status", [("stop", "complete"), ("length", "complete"), ("cancelled", "partial"), ("error", "error")]
)
def test_the_answers_status_follows_how_the_generation_ended(store, finish_reason, status):
    sid = store.new_session("m", "mlx")
    mid = chat_turn(store, sid, "hi", "hello", stats=stats(finish_reason, error="boom" if status == "error" else None))
    answer = store.get_session(sid).messages[-1]
    assert (answer.id, answer.status, answer.content) == (mid, status, "hello")
    assert answer.stats["finish_reason"] == finish_reason and "text" not in answer.stats
    assert (answer.prompt_tokens, answer.generation_tokens) == (12, 5)
    assert (answer.model, answer.engine) == ("m", "mlx")


def test_finish_answer_can_replace_the_text_and_set_the_status(store):
    sid = store.new_session()
    mid = store.begin_answer(sid, model="other", engine="coreml")
    store.append_answer(mid, "half an ans")
    store.finish_answer(mid, "the whole answer", "complete", {"generation_tokens": 3, "decode_tps": float("inf")})
    m = store.get_session(sid).messages[0]
    assert (m.content, m.status, m.model, m.engine) == ("the whole answer", "complete", "other", "coreml")
    assert m.stats == {"generation_tokens": 3, "decode_tps": None}  # JSON has no infinity


def test_reading_a_session_includes_text_not_yet_written(tmp_path):
    with HistoryStore(tmp_path / "h.sqlite3", flush_interval_s=3600) as s:
        sid = s.new_session()
        mid = s.begin_answer(sid)
        s.append_answer(mid, "streaming...")
        assert s.get_session(sid).messages[0].content == "streaming..."


def test_conversation_is_what_an_engine_needs_to_continue(store):
    sid = store.new_session("m", "mlx", "Be brief.")
    chat_turn(store, sid, "first", "one")
    store.add_user_message(sid, "second")
    store.finish_answer(store.begin_answer(sid), "", "error", stats("error", error="out of memory"))
    store.add_user_message(sid, "third")
    store.finish_answer(store.begin_answer(sid), "thr", "partial")
    assert store.get_session(sid).conversation() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "one"},
        {"role": "user", "content": "second"},  # the failed empty answer is left out
        {"role": "user", "content": "third"},
        {"role": "assistant", "content": "thr"},  # the partial one is kept
    ]


# -- titles, lists, search ------------------------------------------------------


def test_a_session_is_titled_from_its_first_message_until_renamed(store):
    sid = store.new_session()
    store.add_user_message(sid, "  How do I\nconvert a model\tfor the ANE?  ")
    store.add_user_message(sid, "and another question")
    assert store.get_session(sid).title == "How do I convert a model for the ANE?"
    store.rename(sid, "ANE conversion")
    assert store.get_session(sid).title == "ANE conversion"
    with pytest.raises(InvalidInput, match="cannot be empty"):
        store.rename(sid, "   ")
    long = store.new_session()
    store.add_user_message(long, "word " * 40)
    title = store.get_session(long).title
    assert len(title) == 60 and title.endswith("…")


def test_sessions_are_listed_most_recent_first_and_can_be_filtered(store):
    a = store.new_session("m1", "mlx")
    chat_turn(store, a, "Tell me about the Neural Engine", "It is fast.")
    b = store.new_session("m2", "coreml")
    chat_turn(store, b, "Une question sur l'ÉCOLE", "Réponse.")
    c = store.new_session("m3", "mlx")
    chat_turn(store, a, "more about it", "Sure.")  # a was updated last
    listed = store.list_sessions()
    assert [s.id for s in listed] == [a, c, b]
    assert [s.message_count for s in listed] == [4, 0, 2]
    assert [s.id for s in store.list_sessions(limit=1)] == [a]
    assert [s.id for s in store.list_sessions(query="neural")] == [a]  # title, any case
    assert [s.id for s in store.list_sessions(query="école")] == [b]  # non-ASCII case folding
    assert [s.id for s in store.list_sessions(query="SURE")] == [a]  # message text
    assert store.list_sessions(query="nowhere") == []


def test_search_finds_messages_with_a_snippet(store):
    sid = store.new_session()
    chat_turn(store, sid, "question", "Before. " * 20 + "The KV cache is reused across turns. " + "After. " * 20)
    [hit] = store.search("kv CACHE")
    assert hit.session_id == sid and hit.role == "assistant" and hit.session_title == "question"
    assert "The KV cache is reused" in hit.snippet and hit.snippet.startswith("…") and len(hit.snippet) <= 82
    with pytest.raises(InvalidInput):
        store.search("  ")


def test_a_unique_prefix_finds_a_session_and_an_ambiguous_one_says_so(store):
    ids = [store.new_session() for _ in range(17)]  # 17 ids, 16 hex digits: two share a first digit
    assert store.resolve_id(ids[0][:10]) == ids[0]
    assert store.resolve_id(ids[0].upper()) == ids[0]
    shared = next(i[0] for i in ids if sum(j[0] == i[0] for j in ids) > 1)
    with pytest.raises(AmbiguousSession, match="more than one session"):
        store.resolve_id(shared)
    with pytest.raises(UnknownSession, match="no session id starts with 'xyz'"):
        store.resolve_id("xyz")


def test_deleting_a_session_deletes_its_messages(store):
    keep, gone = store.new_session(), store.new_session()
    chat_turn(store, keep, "keep me", "ok")
    chat_turn(store, gone, "delete me", "ok")
    store.delete(gone)
    assert [s.id for s in store.list_sessions()] == [keep]
    rows = other_connection(store).execute("SELECT DISTINCT session_id FROM messages").fetchall()
    assert rows == [(keep,)]
    with pytest.raises(UnknownSession):
        store.delete(gone)


# -- bad input ------------------------------------------------------------------


def test_unknown_ids_and_bad_input_raise_clear_errors(store):
    sid = store.new_session()
    for call in (lambda: store.add_user_message("nope", "hi"), lambda: store.begin_answer("nope"),
                 lambda: store.get_session("nope"), lambda: store.rename("nope", "t")):
        with pytest.raises(UnknownSession, match="no session with id 'nope'"):
            call()
    with pytest.raises(UnknownMessage):
        store.append_answer(12345, "x")
    with pytest.raises(UnknownMessage):
        store.finish_answer(12345, "x")
    with pytest.raises(InvalidInput, match="empty"):
        store.add_user_message(sid, " \n\t ")
    with pytest.raises(InvalidInput, match="must be text"):
        store.add_user_message(sid, None)
    with pytest.raises(InvalidInput, match="unknown message status"):
        store.finish_answer(store.begin_answer(sid), "x", "done")
    with pytest.raises(InvalidInput, match="JSON"):
        store.new_session(params={"seed": object()})


def test_any_text_is_stored_exactly_emoji_rtl_escapes_and_a_megabyte(store):
    sid = store.new_session()
    texts = [
        "emoji 😀 👨‍👩‍👧‍👦 🇯🇵",
        "עברית ומספרים 123 — العربية",
        f"escapes are data here: {ESC}[2J {ESC}]0;title\x07 \x9b \u202e \x00",
        "x" * 500_000 + "😀" * 125_000 + "\n" * 1000,  # a 1 MB paste
    ]
    for t in texts:
        store.add_user_message(sid, t)
    assert [m.content for m in store.get_session(sid).messages] == texts


def test_undecodable_surrogates_are_stored_as_replacement_characters(store):
    sid = store.new_session()
    store.add_user_message(sid, "bad byte: \udcff")
    assert store.get_session(sid).messages[0].content == "bad byte: \ufffd"


# -- export ---------------------------------------------------------------------


def test_markdown_export_reads_like_the_chat(store):
    sid = store.new_session("smollm2", "mlx", "Be kind.", {"temperature": 0.2})
    chat_turn(store, sid, "Hi there", "Hello!")
    store.add_user_message(sid, "Go on")
    store.finish_answer(store.begin_answer(sid), "I was cut", "partial")
    md = store.export(sid, "md")
    assert md.startswith("# Hi there\n")
    for part in ("- Model: smollm2 (mlx)", "temperature=0.2", "## System prompt\n\nBe kind.",
                 "## User\n\nHi there", "## Assistant — mlx · smollm2\n\nHello!", "5 tok out · TTFT 0.05 s · prefill 240.0 tok/s · decode 50.0 tok/s",
                 "## Assistant (stopped before the end) — mlx · smollm2\n\nI was cut"):
        assert part in md


def test_json_export_holds_everything_and_is_safe_to_print(store):
    sid = store.new_session("m", "coreml")
    chat_turn(store, sid, f"colour me {ESC}[31m red \x9b", "ok 😀")
    doc = json.loads(store.export(sid, "json"))
    assert doc["format"] == "anechat-history" and doc["version"] == 1
    session = doc["session"]
    assert session["id"] == sid and session["engine"] == "coreml"
    assert [m["content"] for m in session["messages"]] == [f"colour me {ESC}[31m red \x9b", "ok 😀"]
    assert session["messages"][1]["stats"]["decode_tps"] == 50.0
    raw = store.export(sid, "json")
    assert ESC not in raw and "\x9b" not in raw and "😀" in raw
    with pytest.raises(InvalidInput, match="unknown export format"):
        store.export(sid, "pdf")
