"""Nothing lost, with real processes: one killed with SIGKILL in the middle of an
answer, and two writing to the same database at the same moment."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

from anechat.history import HistoryStore

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


def spawn(script: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1,
    )


def lines_of(proc: subprocess.Popen) -> "queue.Queue[str]":
    """The child's stdout lines, read by a thread, so the test can wait with a timeout."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    return lines


def next_line(lines: "queue.Queue[str]", proc: subprocess.Popen, timeout: float = 30) -> str:
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        pytest.fail(f"the child printed nothing for {timeout} s: {proc.stderr.read()}")


def expected_stream(chars: int) -> str:
    """What the streaming child appends: 'word0 word1 word2 ...'."""
    out, i = "", 0
    while len(out) < chars:
        out += f"word{i} "
        i += 1
    return out


STREAMER = """
    import sys, time
    from anechat.history import HistoryStore

    store = HistoryStore(sys.argv[1], flush_interval_s=0.02)
    sid = store.new_session("tiny", "mlx", "You are a test.", {"temperature": 0.0})
    store.add_user_message(sid, "Tell me a very long story")
    mid = store.begin_answer(sid)
    print("SESSION", sid, mid, flush=True)
    sent, i = 0, 0
    while True:  # a model that never stops: the test kills us
        piece = f"word{i} "
        i += 1
        sent += len(piece)
        if store.append_answer(mid, piece):
            print("SAVED", sent, flush=True)
        time.sleep(0.001)
"""


def test_a_process_killed_mid_answer_leaves_the_question_and_the_partial_answer(tmp_path):
    db = tmp_path / "history.sqlite3"
    child = spawn(STREAMER, str(db))
    try:
        lines = lines_of(child)
        _, sid, mid = next_line(lines, child).split()
        saved = [int(next_line(lines, child).split()[1]) for _ in range(5)]  # five writes happened
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        child.stderr.close()

    with HistoryStore(db) as store:  # "after restart"
        assert store.warning is None
        record = store.get_session(sid)
        assert (record.model, record.engine, record.system_prompt) == ("tiny", "mlx", "You are a test.")
        question, answer = record.messages
        assert (question.role, question.content, question.status) == ("user", "Tell me a very long story", "complete")
        assert (answer.id, answer.role, answer.status) == (int(mid), "assistant", "partial")
        assert len(answer.content) >= saved[-1]  # everything the child had saved is there...
        assert answer.content == expected_stream(len(answer.content))[: len(answer.content)]  # ...in order
        # and the chat goes on from where it stopped
        store.add_user_message(sid, "go on")
        assert [m["role"] for m in store.get_session(sid).conversation()] == ["system", "user", "assistant", "user"]


WRITER = """
    import sys, os, time
    from anechat.history import HistoryStore

    db, tag, n, go, shared = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
    print("READY", flush=True)
    while not os.path.exists(go):  # start together with the other writer
        time.sleep(0.005)
    store = HistoryStore(db, flush_interval_s=0)
    own = store.new_session("m", tag)
    for i in range(n):
        sid = own if i % 2 == 0 else (shared or own)
        store.add_user_message(sid, f"{tag} question {i}")
        mid = store.begin_answer(sid)
        for word in f"{tag} answer {i}".split(" "):
            store.append_answer(mid, word + " ")
        store.finish_answer(mid, stats={"finish_reason": "stop", "generation_tokens": 3})
    store.close()
    print("DONE", own, flush=True)
"""


def run_writers_together(db, go, shared="", n=100):
    writers = [spawn(WRITER, str(db), tag, str(n), str(go), shared) for tag in ("A", "B")]
    try:
        for w in writers:
            assert w.stdout.readline().strip() == "READY"
        go.touch()
        results = [w.communicate(timeout=120) for w in writers]
    finally:
        for w in writers:
            if w.poll() is None:
                w.kill()
    for w, (out, err) in zip(writers, results):
        assert w.returncode == 0, err
    return [out.split()[1] for out, _ in results]


def test_two_processes_creating_and_writing_one_database_at_once_lose_nothing(tmp_path):
    db, n = tmp_path / "history.sqlite3", 100
    assert not db.exists()  # both race to create it and migrate its schema
    own_a, own_b = run_writers_together(db, tmp_path / "go", n=n)
    with HistoryStore(db) as store:
        assert store.warning is None
        for tag, sid in (("A", own_a), ("B", own_b)):
            messages = store.get_session(sid).messages
            assert [m.content for m in messages if m.role == "user"] == [f"{tag} question {i}" for i in range(n)]
            assert [m.content for m in messages if m.role == "assistant"] == [f"{tag} answer {i} " for i in range(n)]
            assert {m.status for m in messages} == {"complete"}
        assert sum(s.message_count for s in store.list_sessions()) == 2 * 2 * n


def test_two_processes_writing_into_the_same_session_interleave_without_loss(tmp_path):
    db, n = tmp_path / "history.sqlite3", 100
    with HistoryStore(db) as store:
        shared = store.new_session("m", "mlx")
    run_writers_together(db, tmp_path / "go", shared=shared, n=n)
    with HistoryStore(db) as store:
        messages = store.get_session(shared).messages
        questions = [m.content for m in messages if m.role == "user"]
        assert len(questions) == n  # half of each writer's 2 x n turns went here
        for tag in "AB":
            mine = [q for q in questions if q.startswith(tag)]
            assert mine == [f"{tag} question {i}" for i in range(1, n, 2)]  # all there, in order
        # the other writer may slip a question in between a question and its answer: pair them by text
        answers = {m.content for m in messages if m.role == "assistant"}
        assert answers == {q.replace("question", "answer") + " " for q in questions}
