"""The history never takes the chat down. On a full disk or a read-only database the
chat goes on in memory, says so once, and writes what it kept as soon as it can; the
person's message is in the conversation before anything can fail, and two user
messages never follow each other.

Always run: faults made by SQLite itself inside the process (``max_page_count`` fills
the database, ``query_only`` makes it read-only). With root: a real tmpfs filled to the
last byte or remounted read-only, and a real `anechat chat` process on it.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from anechat.chat.controller import ChatController
from anechat.engines.base import GenerationStats, SamplingParams
from anechat.engines.errors import ContextOverflow
from anechat.history import HistoryStore

ANECHAT = [str(Path(sys.executable).parent / "anechat")]


def answer(chat: ChatController, text: str) -> GenerationStats:
    return [e for e in chat.send(text) if isinstance(e, GenerationStats)][-1]


def roles(store: HistoryStore, session_id: str) -> list[str]:
    return [m.role for m in store.get_session(session_id).messages]


def alternates(chat: ChatController) -> bool:
    return all(a.role != b.role for a, b in zip(chat.messages, chat.messages[1:]))


LONG = "Tell me all about the sea and the ships on it. " * 13  # over one small page: new pages to store it


@pytest.fixture
def store(tmp_path):
    """A real store whose database has small (512-byte) pages, so a long message needs new ones."""
    path = tmp_path / "history.sqlite3"
    sqlite3.connect(path).execute("PRAGMA page_size = 512").connection.execute("VACUUM").connection.close()
    with HistoryStore(path) as s:
        yield s


@pytest.fixture
def chat(tiny_model_dir, store):
    c = ChatController(params=SamplingParams(max_tokens=5), history=store, history_retry_s=0)
    c.load(str(tiny_model_dir), "mlx")
    return c


def fill_database(store: HistoryStore) -> None:
    """SQLite's own limit: the database may not grow by one page, and its free pages are
    taken, so the next long message gets "database or disk is full"."""
    db = store._conn
    db.execute("CREATE TABLE IF NOT EXISTS filler (x BLOB)")
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    for size in (4096, 1024, 256, 64, 16, 4, 1):
        try:
            while True:
                db.execute("INSERT INTO filler VALUES (zeroblob(?))", (size,))
        except sqlite3.OperationalError:
            pass


def free_database(store: HistoryStore) -> None:
    store._conn.execute("PRAGMA max_page_count = 1073741823")


# -- in-process faults: always run ------------------------------------------------

def test_a_database_that_fills_up_mid_chat_keeps_the_chat_going_and_saves_it_later(chat, store):
    answer(chat, "Hello")
    fill_database(store)
    second = answer(chat, LONG)
    third = answer(chat, "Tell me more about it")
    assert second.finish_reason != "error" and third.finish_reason != "error"
    assert [m.role for m in chat.messages] == ["user", "assistant"] * 3  # the whole conversation, in memory
    warning = chat.take_history_warning()
    assert "database or disk is full" in warning and "saved when writing works again" in warning
    assert chat.take_history_warning() is None  # once
    assert chat.history_pending > 0
    assert roles(store, chat.session_id) == ["user", "assistant"]

    free_database(store)
    answer(chat, "Short now")
    assert chat.history_pending == 0
    record = store.get_session(chat.session_id)
    assert [m.role for m in record.messages] == ["user", "assistant"] * 4
    assert [m.content for m in record.messages] == [m.content for m in chat.messages]
    assert all(m.status == "complete" for m in record.messages)
    assert chat.take_history_warning() is None


def test_a_read_only_database_keeps_the_chat_and_its_first_message(chat, store):
    store._conn.execute("PRAGMA query_only = ON")  # every write: "attempt to write a readonly database"
    first = answer(chat, "Hello")
    assert first.finish_reason != "error"
    assert "readonly database" in chat.take_history_warning()
    assert store.list_sessions() == []  # nothing could be written...
    store._conn.execute("PRAGMA query_only = OFF")
    answer(chat, "Again")
    record = store.get_session(chat.session_id)  # ...and all of it is there once it could
    assert [(m.role, m.content) for m in record.messages][0::2] == [("user", "Hello"), ("user", "Again")]
    assert [m.content for m in record.messages] == [m.content for m in chat.messages]


def test_writes_are_retried_only_after_the_retry_interval(tiny_model_dir, store):
    chat = ChatController(params=SamplingParams(max_tokens=3), history=store, history_retry_s=3600)
    chat.load(str(tiny_model_dir), "mlx")
    fill_database(store)
    answer(chat, LONG)
    free_database(store)
    answer(chat, "Hello")  # too soon to try again: kept in memory, in order
    assert chat.history_pending > 0 and roles(store, chat.session_id) == []


def test_settings_changed_while_the_disk_is_full_reach_the_session(chat, store):
    store._conn.execute("PRAGMA query_only = ON")
    answer(chat, "Hello")
    chat.set_system_prompt("Be brief.")
    store._conn.execute("PRAGMA query_only = OFF")
    answer(chat, "Again")
    assert store.get_session(chat.session_id).system_prompt == "Be brief."


def test_a_turn_that_fails_leaves_no_unanswered_user_message(chat, store):
    answer(chat, "Hello")
    with pytest.raises(ContextOverflow):
        answer(chat, "word " * 2000)  # longer than the tiny model's context
    assert chat.messages[-1].role == "assistant"
    answer(chat, "Shorter")
    assert alternates(chat)


def test_a_session_that_ended_mid_turn_resumes_with_alternating_messages(tiny_model_dir, store):
    sid = store.new_session(str(tiny_model_dir), "mlx")
    store.add_user_message(sid, "first")
    store.finish_answer(store.begin_answer(sid), "", status="error")  # failed with no text
    store.add_user_message(sid, "second")
    store.finish_answer(store.begin_answer(sid), "an answer")
    store.add_user_message(sid, "third, never answered")  # the process ended here
    chat = ChatController(params=SamplingParams(max_tokens=3), history=store)
    chat.open_session(sid)
    assert [(m.role, m.content) for m in chat.messages] == [("user", "second"), ("assistant", "an answer")]
    chat.load(str(tiny_model_dir), "mlx")
    answer(chat, "fourth")
    assert alternates(chat)


# -- a real tmpfs: a disk that is really full, a mount that is really read-only ----------

@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs of its own (needs root: mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the in-process faults above cover the logic")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill_disk(folder: Path) -> Path:
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    return filler


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def test_on_a_really_full_disk_the_store_says_so_at_open_and_the_chat_saves_once_space_returns(small_disk, tiny_model_dir):
    path = small_disk / "history.sqlite3"
    HistoryStore(path).close()
    filler = fill_disk(small_disk)
    with HistoryStore(path) as store:
        assert not store.writable and "saved when the database can be written again" in store.warning
        chat = ChatController(params=SamplingParams(max_tokens=5), history=store, history_retry_s=0)
        chat.load(str(tiny_model_dir), "mlx")
        answer(chat, LONG)
        answer(chat, "Again")
        assert chat.take_history_warning() is None  # the store already said it at open
        assert len(chat.messages) == 4 and store.list_sessions() == []
        filler.unlink()
        answer(chat, "Room again")
        assert roles(store, chat.session_id) == ["user", "assistant"] * 3
        assert store.writable


def test_a_database_on_a_read_only_mount_keeps_the_chat_and_saves_it_when_writable_again(small_disk, tiny_model_dir):
    path = small_disk / "history.sqlite3"
    with HistoryStore(path) as store:
        old = store.new_session("m", "mlx", title="an old chat")
    remount(small_disk, "ro")
    try:
        with HistoryStore(path) as store:
            assert not store.writable and "saved when the database can be written again" in store.warning
            chat = ChatController(params=SamplingParams(max_tokens=5), history=store, history_retry_s=0)
            chat.load(str(tiny_model_dir), "mlx")
            answer(chat, "Hello")
            remount(small_disk, "rw")
            answer(chat, "Again")
            assert roles(store, chat.session_id) == ["user", "assistant"] * 2
            assert {s.id for s in store.list_sessions()} == {old, chat.session_id}
    finally:
        remount(small_disk, "rw")


def test_anechat_chat_answers_two_questions_through_a_full_disk(small_disk, tiny_model_dir):
    HistoryStore(small_disk / "history.sqlite3").close()
    fill_disk(small_disk)
    result = subprocess.run(
        [*ANECHAT, "chat", "-m", str(tiny_model_dir), "--max-tokens", "6"],
        input=b"Hello\nAnd again\n", capture_output=True, timeout=180,
        env={**os.environ, "NO_COLOR": "1", "ANECHAT_DATA_DIR": str(small_disk)},
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if "tok out" in line]) == 2  # both answered
    assert len([line for line in err.splitlines() if "chat history" in line]) == 1, err  # one warning
    assert result.stdout.decode().count("assistant> ") == 2


def test_a_store_kept_only_in_memory_for_good_records_the_chat_there(tiny_model_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with HistoryStore(blocker / "data" / "history.sqlite3") as store:
        chat = ChatController(params=SamplingParams(max_tokens=3), history=store)
        chat.load(str(tiny_model_dir), "mlx")
        answer(chat, "Hello")
        assert chat.history_pending == 0 and chat.take_history_warning() is None
        assert roles(store, chat.session_id) == ["user", "assistant"]
