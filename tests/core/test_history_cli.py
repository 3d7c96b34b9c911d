"""`anechat history list | show | export | rm | rename`, run through Typer's test runner
against a real database in a temporary data folder. Ids may be shortened to a unique
prefix; every mistake is one line on stderr and exit status 1, never a traceback."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from anechat.cli.history import app
from anechat.history import HistoryStore

ESC = "\x1b"


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


@pytest.fixture
def chats(data_dir):
    """Two sessions: one finished chat, one whose answer was cut off (with an escape sequence in it)."""
    with HistoryStore() as store:
        first = store.new_session("smollm2-135m", "mlx", "Be brief.", {"temperature": 0.0})
        store.add_user_message(first, "What is the Neural Engine?")
        mid = store.begin_answer(first)
        store.finish_answer(mid, "A matrix accelerator 😀", stats={"generation_tokens": 4, "decode_tps": 40.0,
                                                                     "ttft_s": 0.1, "finish_reason": "stop"})
        second = store.new_session("llama-1b", "coreml")
        store.add_user_message(second, f"print {ESC}[2J please")
        mid = store.begin_answer(second)
        store.append_answer(mid, f"Sure: {ESC}]0;pwned\x07 and then")
    return {"first": first, "second": second}


def run(*args, input=None):
    result = CliRunner().invoke(app, list(args), input=input)
    assert "Traceback" not in result.output
    return result


def test_list_shows_sessions_newest_first_with_short_ids(chats):
    result = run("list")
    assert result.exit_code == 0
    header, newest, older = result.stdout.splitlines()
    assert header.split() == ["ID", "UPDATED", "MSGS", "MODEL", "TITLE"]
    assert newest.startswith(chats["second"][:8]) and "llama-1b (coreml)" in newest
    assert older.startswith(chats["first"][:8]) and older.endswith("What is the Neural Engine?")
    assert ESC not in result.stdout and "print ␛[2J please" in newest  # titles are made safe


def test_list_json_and_search(chats):
    listed = json.loads(run("list", "--json").stdout)
    assert [s["id"] for s in listed] == [chats["second"], chats["first"]]
    assert listed[1]["message_count"] == 2 and listed[1]["engine"] == "mlx"
    found = json.loads(run("list", "--json", "--search", "neural ENGINE").stdout)
    assert [s["id"] for s in found] == [chats["first"]]
    assert "no saved sessions containing 'zebra'" in run("list", "--search", "zebra").stdout


def test_list_on_an_empty_history(data_dir):
    result = run("list")
    assert result.exit_code == 0 and result.stdout.strip() == "no saved sessions"


def test_show_prints_the_chat_safely(chats):
    result = run("show", chats["second"][:6])
    assert result.exit_code == 0
    out = result.stdout
    assert chats["second"] in out and "llama-1b · coreml" in out
    assert "── assistant" in out and "· partial ──" in out
    assert "Sure: ␛]0;pwned␇ and then" in out and ESC not in out and "\x07" not in out
    first = run("show", chats["first"]).stdout
    assert "system: Be brief." in first and "temperature=0.0" in first and "A matrix accelerator 😀" in first
    assert "4 tok out · TTFT 0.10 s · decode 40.0 tok/s · mlx · smollm2-135m · stop" in first  # which engine and model wrote the answer


@pytest.mark.parametrize("command", [["show"], ["export"], ["rm", "--yes"], ["rename"]])
def test_an_unknown_id_is_one_clear_line(chats, command):
    args = [*command, "zzz"] + (["title"] if command == ["rename"] else [])
    result = run(*args)
    assert result.exit_code == 1
    assert result.stderr == "anechat: no session id starts with 'zzz' — see `anechat history list`\n"


def test_an_ambiguous_prefix_asks_for_more_characters(data_dir):
    with HistoryStore() as store:
        ids = [store.new_session() for _ in range(17)]
    shared = next(i[0] for i in ids if sum(j[0] == i[0] for j in ids) > 1)
    result = run("show", shared)
    assert result.exit_code == 1 and "matches more than one session" in result.stderr
    assert "give more characters" in result.stderr and len(result.stderr.splitlines()) == 1


def test_export_markdown_to_a_file_and_json_to_stdout(chats, tmp_path):
    target = tmp_path / "chat.md"
    result = run("export", chats["first"][:8], "-o", str(target))
    assert result.exit_code == 0 and f"wrote {target}" in result.stderr
    md = target.read_text(encoding="utf-8")
    assert md.startswith("# What is the Neural Engine?") and "## Assistant — mlx · smollm2-135m\n\nA matrix accelerator 😀" in md
    doc = json.loads(run("export", chats["second"], "--format", "json").stdout)
    assert doc["session"]["messages"][1]["content"] == f"Sure: {ESC}]0;pwned\x07 and then"  # exact, escaped in JSON
    assert doc["session"]["messages"][1]["status"] == "partial"


def test_export_errors_are_one_line(chats, tmp_path):
    result = run("export", chats["first"], "-o", str(tmp_path / "no" / "such" / "folder" / "x.md"))
    assert result.exit_code == 1 and result.stderr.startswith("anechat: cannot write ")
    assert len(result.stderr.splitlines()) == 1
    result = run("export", chats["first"], "--format", "pdf")
    assert result.exit_code != 0 and "pdf" in result.output


def test_rm_asks_first_and_keeps_the_session_unless_confirmed(chats):
    result = run("rm", chats["first"][:8], input="n\n")
    assert result.exit_code == 1 and "Delete session" in result.stdout and "not deleted" in result.stderr
    result = run("rm", chats["first"][:8])  # no answer at all (stdin closed)
    assert result.exit_code == 1 and "not deleted" in result.stderr
    assert len(json.loads(run("list", "--json").stdout)) == 2
    result = run("rm", chats["first"][:8], input="y\n")
    assert result.exit_code == 0 and f"deleted session {chats['first'][:8]}" in result.stdout
    assert run("rm", chats["second"], "--yes").exit_code == 0
    assert json.loads(run("list", "--json").stdout) == []


def test_rename(chats):
    assert run("rename", chats["first"][:5], "ANE basics").exit_code == 0
    assert json.loads(run("list", "--json", "-s", "ane basics").stdout)[0]["title"] == "ANE basics"
    result = run("rename", chats["first"][:5], "   ")
    assert result.exit_code == 1 and result.stderr == "anechat: a session title cannot be empty\n"


def test_a_damaged_database_is_reported_and_the_command_still_runs(data_dir):
    data_dir.mkdir(parents=True)
    (data_dir / "history.sqlite3").write_bytes(b"garbage" * 1000)
    result = run("list")
    assert result.exit_code == 0 and result.stdout.strip() == "no saved sessions"
    assert result.stderr.startswith("anechat: warning: the history database was damaged")
    assert any(p.name.startswith("history.corrupt-") for p in data_dir.iterdir())
