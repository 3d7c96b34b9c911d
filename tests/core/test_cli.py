"""The headless command line, end to end in real subprocesses: `anechat run`, `chat`,
`doctor`, and the one-line errors every bad input gets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tinymodel import build_tiny_llama

ANECHAT = [str(Path(sys.executable).parent / "anechat")]


def anechat(*args: str, stdin: str | bytes | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run([*ANECHAT, *args], input=data, capture_output=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1"})


def one_clear_line(result: subprocess.CompletedProcess) -> str:
    """A failed command prints exactly one line on stderr, and no traceback."""
    err = result.stderr.decode()
    assert result.returncode != 0
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def test_run_streams_the_answer_and_prints_one_stats_line(tiny_model_dir):
    result = anechat("run", "Hello there", "-m", str(tiny_model_dir), "--max-tokens", "12")
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().strip()  # the answer
    stats = [line for line in result.stderr.decode().splitlines() if "tok/s" in line]
    assert len(stats) == 1
    assert "mlx" in stats[0] and "decode" in stats[0] and "TTFT" in stats[0]


def test_run_json_has_every_field(tiny_model_dir):
    result = anechat("run", "Hello", "-m", str(tiny_model_dir), "--max-tokens", "8", "--json")
    assert result.returncode == 0, result.stderr.decode()
    record = json.loads(result.stdout)
    expected = {"model", "engine", "runtime", "text", "prompt_tokens", "generation_tokens", "ttft_s", "prefill_tps", "decode_tps", "peak_memory_bytes", "finish_reason"}
    assert expected <= set(record)
    assert record["engine"] == "mlx"
    assert record["finish_reason"] in ("stop", "length")
    assert 1 <= record["generation_tokens"] <= 8
    assert record["prompt_tokens"] > 0 and record["ttft_s"] > 0


def test_run_reads_the_prompt_from_stdin_and_is_reproducible(tiny_model_dir):
    args = ("run", "-", "-m", str(tiny_model_dir), "--max-tokens", "10", "--json", "--temp", "0.9", "--seed", "7")
    first = json.loads(anechat(*args, stdin="Write a haiku about the sea.").stdout)
    second = json.loads(anechat(*args, stdin="Write a haiku about the sea.").stdout)
    assert first["prompt_tokens"] > 10  # the piped text was the prompt
    assert first["text"] == second["text"]


def test_non_utf8_stdin_is_replaced_with_a_warning(tiny_model_dir):
    result = anechat("run", "-", "-m", str(tiny_model_dir), "--max-tokens", "4", stdin=b"caf\xe9 \xff hello")
    assert result.returncode == 0, result.stderr.decode()
    assert "not valid UTF-8" in result.stderr.decode()


def test_unknown_model_suggests_close_names():
    line = one_clear_line(anechat("run", "hi", "-m", "smollm2-135m-instrct"))
    assert "smollm2-135m-instruct" in line


def test_a_folder_that_is_not_a_model_says_what_is_missing(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    line = one_clear_line(anechat("run", "hi", "-m", str(tmp_path)))
    assert "config.json" in line or "meta.yaml" in line


@pytest.mark.parametrize(
    "option, value, mentions",
    [("--temp", "-1", "temperature"), ("--top-p", "0", "top_p"), ("--top-p", "1.5", "top_p"), ("--max-tokens", "0", "max_tokens")],
)
def test_invalid_parameters_are_refused(tiny_model_dir, option, value, mentions):
    line = one_clear_line(anechat("run", "hi", "-m", str(tiny_model_dir), option, value))
    assert mentions in line


def test_a_prompt_longer_than_the_context_is_refused(tiny_model_dir):
    line = one_clear_line(anechat("run", "-", "-m", str(tiny_model_dir), stdin="fox " * 2000))
    assert "context" in line


def test_an_engine_that_cannot_run_the_model_says_why(tiny_model_dir):
    assert "unknown engine" in one_clear_line(anechat("run", "hi", "-m", str(tiny_model_dir), "-e", "tpu"))
    line = one_clear_line(anechat("run", "hi", "-m", str(tiny_model_dir), "-e", "coreml"))
    assert "coreml" in line and "convert" in line


def test_ctrl_c_during_run_exits_130_without_traceback(tmp_path):
    model = build_tiny_llama(tmp_path / "long-context", max_position_embeddings=32768)
    proc = subprocess.Popen(
        [*ANECHAT, "run", "Tell me a long story", "-m", str(model), "--max-tokens", "30000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    proc.stdout.read(1)  # the answer has started streaming
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert b"Traceback" not in err


def test_line_chat_keeps_the_conversation_and_knows_its_commands(tiny_model_dir):
    script = "Hello\nAgain\n/system Be brief.\n/frobnicate\n/reset\n/quit\n"
    result = anechat("chat", "-m", str(tiny_model_dir), "--max-tokens", "6", stdin=script)
    assert result.returncode == 0, result.stderr.decode()
    err = result.stderr.decode()
    stats = [line for line in err.splitlines() if "tok out" in line]
    assert len(stats) == 2  # a stats line after each answer
    assert "cached" not in stats[0] and "cached)" in stats[1]  # turn 2 prefilled only its new tokens
    assert "system prompt set" in err
    assert "unknown command /frobnicate" in err
    assert "conversation cleared" in err


def test_doctor_names_engines_blas_and_folders():
    result = anechat("doctor")
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode()
    for label in ("OS", "chip", "Python", "engine mlx", "engine coreml", "BLAS", "models folder", "data folder"):
        assert label in out
    if sys.platform.startswith("linux") and Path("/usr/lib/x86_64-linux-gnu/libopenblas.so.0").exists():
        assert "OpenBLAS" in out


def test_help_lists_the_commands():
    result = anechat("--help")
    assert result.returncode == 0
    out = result.stdout.decode()
    for command in ("run", "chat", "doctor", "models", "convert"):
        assert command in out


def test_line_chat_is_recorded_and_can_be_resumed(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("ANECHAT_DATA_DIR", str(tmp_path / "data"))
    first = anechat("chat", "-m", str(tiny_model_dir), "--max-tokens", "4", stdin="Remember the fox\n/quit\n")
    assert first.returncode == 0, first.stderr.decode()
    listed = json.loads(anechat("history", "list", "--json").stdout)
    assert len(listed) == 1
    session_id = listed[0]["id"]
    resumed = anechat("chat", "--resume", session_id[:8], "--max-tokens", "4", stdin="And now?\n/quit\n")
    assert resumed.returncode == 0, resumed.stderr.decode()
    assert "resumed a session of 2 messages" in resumed.stderr.decode()
    shown = anechat("history", "export", session_id, "--format", "json")
    messages = json.loads(shown.stdout)["session"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]


def test_line_chat_takes_the_models_sampling_defaults_unless_a_sampling_flag_is_given(tmp_path, tiny_model_dir):
    import shutil

    model = tmp_path / "tiny-sampling"
    shutil.copytree(tiny_model_dir, model)
    config = json.loads((model / "generation_config.json").read_text())
    (model / "generation_config.json").write_text(json.dumps({**config, "do_sample": True, "temperature": 0.6}))
    own = anechat("chat", "-m", str(model), "--no-history", stdin="/params\n/quit\n")
    assert "temperature=0.6" in own.stderr.decode() and "repetition_penalty=1.1" in own.stderr.decode()
    given = anechat("chat", "-m", str(model), "--no-history", "--temp", "0", stdin="/params\n/quit\n")
    assert "temperature=0.0" in given.stderr.decode() and "repetition_penalty=1.0" in given.stderr.decode()


def test_a_part_of_the_ffn_cannot_be_left_in_fp16_alone(tiny_model_dir, tmp_path):
    line = one_clear_line(anechat("convert", str(tiny_model_dir), "--to", "coreml", "--lut-ffn", "4", "--lut-ffn-down", "none", "-o", str(tmp_path / "m")))
    assert "--lut-ffn-down 'none' is invalid: use one of 4, 6, 8" in line
    line = one_clear_line(anechat("convert", str(tiny_model_dir), "--to", "coreml", "--lut-ffn", "none", "--lut-ffn-last", "6", "-o", str(tmp_path / "m")))
    assert "lut_ffn_last needs a LUT for the FFN" in line
    assert not (tmp_path / "m").exists()
