"""Bad input at the command line (issue 7): each case gets one clear line or a safe
rendering, never a traceback, and the line chat keeps running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tinymodel import build_tiny_llama

ANECHAT = [str(Path(sys.executable).parent / "anechat")]


def anechat(*args: str, stdin: str | bytes | None = None) -> subprocess.CompletedProcess:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run([*ANECHAT, *args], input=data, capture_output=True, timeout=180, env={**os.environ, "NO_COLOR": "1"})


def single_error(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    assert result.returncode != 0 and "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def escape_model(tmp_path_factory) -> Path:
    """A tiny model whose every answer token is the terminal escape character."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "escape-model", always_text="\x1b")


def test_an_empty_prompt_is_refused(tiny_model_dir):
    assert "empty" in single_error(anechat("run", "   ", "-m", str(tiny_model_dir)))


def test_emoji_and_right_to_left_text_are_fine(tiny_model_dir):
    result = anechat("run", "مرحبا 🙂 שלום — café", "-m", str(tiny_model_dir), "--max-tokens", "4", "--json")
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout)["prompt_tokens"] > 5


def test_escape_sequences_in_a_prompt_are_just_text(tiny_model_dir):
    result = anechat("run", "\x1b[31mred\x1b[0m \x07 bell \x1b]52;c;aGk=\x07", "-m", str(tiny_model_dir), "--max-tokens", "3")
    assert result.returncode == 0, result.stderr.decode()


def test_escape_sequences_a_model_writes_never_reach_the_terminal_raw(escape_model):
    result = anechat("run", "Say something", "-m", str(escape_model), "--max-tokens", "5")
    assert result.returncode == 0, result.stderr.decode()
    assert b"\x1b" not in result.stdout
    assert result.stdout.strip()  # shown in a visible form instead
    as_json = json.loads(anechat("run", "Say something", "-m", str(escape_model), "--max-tokens", "5", "--json").stdout)
    assert as_json["text"] == "\x1b" * 5  # JSON keeps the exact text, safely escaped


def test_a_one_megabyte_paste_in_the_chat_gets_an_error_and_the_chat_goes_on(tiny_model_dir):
    script = "x" * 1_000_000 + "\nHello\n/quit\n"
    result = anechat("chat", "-m", str(tiny_model_dir), "--max-tokens", "3", "--no-history", stdin=script)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    assert "Traceback" not in err
    assert "context" in err  # the paste did not fit
    assert err.count("tok out") == 1  # the next message was answered


def test_a_model_folder_without_weights_says_so(tiny_model_dir, tmp_path):
    broken = tmp_path / "no-weights"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_bytes((tiny_model_dir / name).read_bytes())
    line = single_error(anechat("run", "hi", "-m", str(broken)))
    assert "safetensors" in line or "weights" in line


def test_a_truncated_weights_file_says_so(tiny_model_dir, tmp_path):
    broken = tmp_path / "truncated"
    broken.mkdir()
    for item in tiny_model_dir.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    line = single_error(anechat("run", "hi", "-m", str(broken)))
    assert "model.safetensors" in line


def test_a_meta_yaml_with_wrong_types_names_the_key(tmp_path):
    folder = tmp_path / "bad-coreml"
    folder.mkdir()
    (folder / "meta.yaml").write_text(
        "model_info:\n  parameters:\n    context_length: lots\n    batch_size: 64\n    model_prefix: llama\n"
    )
    line = single_error(anechat("run", "hi", "-m", str(folder), "-e", "coreml"))
    assert "context_length" in line


def test_a_bad_model_name_is_exactly_one_anechat_line_and_a_failing_exit():
    result = anechat("run", "hello", "-m", "no-such-model-anywhere")
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("anechat: no model named 'no-such-model-anywhere'"), err
    assert result.stdout == b""


@pytest.mark.parametrize("args", [["models", "info", "no-such-model"], ["history", "show", "no-such-session"], ["compare", "hi", "-e", "cuda", "--json"]])
def test_every_command_group_prints_errors_in_the_one_format(args):
    result = anechat(*args)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.startswith("anechat: ") and err.count("\n") == 1, err


def test_an_error_nobody_foresaw_is_one_line_that_calls_it_a_bug_and_debug_shows_where(monkeypatch, capsys):
    # every command of the CLI runs inside the same error edge as this small app
    from anechat.cli.errors import DEBUG_VARIABLE, INTERNAL_ERROR, typer_app

    app = typer_app()

    @app.command()
    def broken(count: int = 1) -> None:
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")

    @app.command()
    def other() -> None:
        pass

    monkeypatch.delenv(DEBUG_VARIABLE, raising=False)
    with pytest.raises(SystemExit) as exit_info:
        app(["broken"], prog_name="anechat")
    assert exit_info.value.code == INTERNAL_ERROR
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("anechat: internal error: TypeError:") and f"{DEBUG_VARIABLE}=1" in err

    with pytest.raises(SystemExit) as exit_info:  # a usage mistake is still click's own message
        app(["broken", "--count", "many"], prog_name="anechat")
    assert exit_info.value.code == 2 and "Invalid value" in capsys.readouterr().err

    monkeypatch.setenv(DEBUG_VARIABLE, "1")
    with pytest.raises(TypeError):
        app(["broken"], prog_name="anechat", standalone_mode=False)
