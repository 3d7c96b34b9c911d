"""The chat's slash commands (one table for `anechat chat` and the app), editing the
conversation from a message on (the KV cache trims to the edit), and exporting it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anechat.chat.commands import APP, CHAT, apply_params, command_list, complete, message_text, parse
from anechat.chat.controller import ChatController
from anechat.chat.transcript import export_conversation
from anechat.engines.base import GenerationStats, SamplingParams
from anechat.engines.errors import InvalidParameter
from anechat.history import HistoryStore

ANECHAT = [str(Path(sys.executable).parent / "anechat")]


def finish(events) -> GenerationStats:
    return [e for e in events if isinstance(e, GenerationStats)][-1]


# -- the table ----------------------------------------------------------------------------


def test_a_line_without_a_slash_is_a_message_and_a_double_slash_sends_one_slash():
    assert parse("hello /reset", APP) is None
    assert parse("//etc/hosts is a file", APP) is None
    assert message_text("//etc/hosts is a file") == "/etc/hosts is a file"
    assert message_text("plain") == "plain"


def test_commands_parse_with_their_arguments():
    assert parse("/system  Be brief. ", CHAT).arg == "Be brief."
    assert parse("/exit", CHAT).name == "/quit"  # an alias
    assert parse("/engine coreml", APP).value == "coreml"
    assert parse("/params temperature=0.7 max_tokens=20 seed=none", APP).value == {"temperature": 0.7, "max_tokens": 20, "seed": None}
    assert parse("/export", APP).value == ("md", None)
    assert parse("/export json out/chat.txt", APP).value == ("json", Path("out/chat.txt"))
    assert parse("/export notes.json", APP).value == ("json", Path("notes.json"))
    assert parse("/compare Name a colour", APP).arg == "Name a colour"


def test_an_unknown_command_is_refused_in_one_line_with_the_list():
    with pytest.raises(InvalidParameter) as err:
        parse("/frobnicate now", APP)
    line = str(err.value)
    assert "\n" not in line and "unknown command /frobnicate" in line
    assert all(name in line for name in ("/reset", "/system TEXT", "/engine NAME", "/compare", "/export"))


@pytest.mark.parametrize(
    "line, says",
    [
        ("/engine tpu", "unknown engine 'tpu'"),
        ("/engine", "/engine needs NAME"),
        ("/model", "/model needs NAME"),
        ("/reset now", "takes nothing after it"),
        ("/params temperature=warm", "is not a number"),
        ("/params heat=1", "KEY one of temperature"),
    ],
)
def test_bad_arguments_get_one_line_that_says_what_to_type(line, says):
    with pytest.raises(InvalidParameter) as err:
        parse(line, APP)
    assert says in str(err.value) and "\n" not in str(err.value)


def test_app_only_commands_say_where_they_work_in_the_line_chat():
    with pytest.raises(InvalidParameter, match="works in the app"):
        parse("/compare", CHAT)
    assert "/engine" not in command_list(CHAT) and "/engine NAME" in command_list(APP)


def test_command_names_complete_from_a_prefix():
    assert complete("/re", APP) == ["/reset", "/regen"]
    assert complete("/e", CHAT) == ["/export"]  # /engine is the app's only


def test_parameters_change_only_what_is_named_and_are_validated():
    params = apply_params(SamplingParams(max_tokens=9), {"temperature": 0.5})
    assert (params.temperature, params.max_tokens) == (0.5, 9)
    with pytest.raises(InvalidParameter, match="top_p"):
        apply_params(params, {"top_p": 2.0})


# -- editing the conversation --------------------------------------------------------------


def test_editing_a_message_trims_the_cache_to_the_messages_before_it(tiny_model_dir):
    chat = ChatController(params=SamplingParams(max_tokens=6))
    chat.load(str(tiny_model_dir), "mlx")
    finish(chat.send("The first question about foxes"))
    second = finish(chat.send("A second question about owls"))
    assert second.cached_tokens > 0

    removed = chat.truncate_before(2)  # the second question: edit it and send again
    assert removed.content == "A second question about owls"
    assert [m.role for m in chat.messages] == ["user", "assistant"]
    edited = finish(chat.send("An edited question about bats"))
    # the first exchange comes from the cache; only the edited question is prefilled again
    assert 0 < edited.cached_tokens < second.cached_tokens + second.prompt_tokens
    assert edited.prompt_tokens < edited.cached_tokens
    assert [m.content for m in chat.messages if m.role == "user"] == ["The first question about foxes", "An edited question about bats"]


def test_an_edit_forks_the_recorded_chat_and_keeps_the_original(tiny_model_dir, tmp_path):
    with HistoryStore(tmp_path / "history.sqlite3") as store:
        chat = ChatController(params=SamplingParams(max_tokens=4), history=store)
        chat.load(str(tiny_model_dir), "mlx")
        finish(chat.send("Keep me"))
        finish(chat.send("Edit me"))
        original = chat.session_id
        chat.truncate_before(2)
        finish(chat.send("Edited"))
        assert chat.session_id != original
        kept = store.get_session(original)
        assert [m.content for m in kept.messages if m.role == "user"] == ["Keep me", "Edit me"]
        fork = store.get_session(chat.session_id)
        assert [m.content for m in fork.messages if m.role == "user"] == ["Keep me", "Edited"]
        assert fork.title.endswith("(edited)")


def test_truncating_past_the_end_is_refused_in_one_line():
    chat = ChatController()
    with pytest.raises(InvalidParameter, match="no message 3"):
        chat.truncate_before(3)


# -- export ---------------------------------------------------------------------------------


def test_the_conversation_exports_as_markdown_or_json(tiny_model_dir, tmp_path):
    chat = ChatController(system_prompt="Be brief.", params=SamplingParams(max_tokens=4))
    with pytest.raises(InvalidParameter, match="nothing to export"):
        export_conversation(chat, "md", tmp_path / "x.md")
    chat.load(str(tiny_model_dir), "mlx")
    finish(chat.send("Hello"))
    md = export_conversation(chat, "md", tmp_path / "chat.md").read_text()
    assert "## User" in md and "Hello" in md and "Be brief." in md and "(mlx)" in md
    doc = json.loads(export_conversation(chat, "json", tmp_path).read_text())  # a folder: a dated file in it
    assert [m["role"] for m in doc["session"]["messages"]] == ["user", "assistant"]
    with pytest.raises(InvalidParameter, match="cannot write"):
        export_conversation(chat, "md", tmp_path / "no" / "such" / "dir.md")


# -- the line chat uses the same table --------------------------------------------------------


def test_line_chat_regenerates_sets_params_and_exports(tiny_model_dir, tmp_path):
    out = tmp_path / "chat.json"
    script = f"Hello\n/regen\n/params max_tokens=3\n/compare\n/export {out}\n/quit\n"
    result = subprocess.run(
        [*ANECHAT, "chat", "-m", str(tiny_model_dir), "--max-tokens", "6", "--no-history"],
        input=script.encode(), capture_output=True, timeout=180, env={**os.environ, "NO_COLOR": "1"},
    )
    err = result.stderr.decode()
    assert result.returncode == 0, err
    assert "Traceback" not in err
    stats = [line for line in err.splitlines() if "tok out" in line]
    assert len(stats) == 2 and "cached" in stats[1]  # the regenerated answer reused the system/chat prefix
    assert "max_tokens=3" in err
    assert "/compare works in the app" in err
    messages = json.loads(out.read_text())["session"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant"]  # the regenerated answer replaced the first
