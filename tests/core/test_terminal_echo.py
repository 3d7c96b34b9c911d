"""Names and texts from model folders and the history reach the terminal only through
the one sanitiser: a folder name with escape sequences and a model's answer with bidi
overrides and C1 controls come out visible and inert, in text and in `run --json`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ANECHAT = [str(Path(sys.executable).parent / "anechat")]
RAW = ("\x1b", "\x07", "\u202e", "\u009b")


def anechat(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*ANECHAT, *args], input=stdin, capture_output=True, timeout=180, env={**os.environ, "NO_COLOR": "1"})


def assert_inert(data: bytes) -> str:
    text = data.decode()
    assert not any(ch in text for ch in RAW), ascii(text)
    return text


def test_a_folder_name_with_escape_sequences_is_shown_visibly(tiny_model_dir, tmp_path):
    folder = tmp_path / "evil\x1b]0;owned\x07\x1b[2J\u202emodel"
    shutil.copytree(tiny_model_dir, folder)
    result = anechat("run", "Hi", "-m", str(folder), "--max-tokens", "3")
    assert result.returncode == 0, result.stderr
    err = assert_inert(result.stderr)
    assert "␛]0;owned␇␛[2" in err and "\\u202emodel" in err  # (the catalog lowercases names)


def test_an_error_naming_a_hostile_folder_is_one_inert_line(tmp_path):
    result = anechat("run", "Hi", "-m", str(tmp_path / "no\x1b[31mhere\u009b"))
    assert result.returncode != 0
    err = assert_inert(result.stderr)
    assert len(err.strip().splitlines()) == 1 and "␛[31m" in err


def test_run_json_escapes_bidi_overrides_and_c1_controls(tiny_model_dir, tmp_path):
    folder = tmp_path / "name\u202e\u009b"
    shutil.copytree(tiny_model_dir, folder)
    result = anechat("run", "Hi", "-m", str(folder), "--max-tokens", "3", "--json")
    assert result.returncode == 0, result.stderr
    out = assert_inert(result.stdout)
    assert "\\u202e\\u009b" in out
    assert json.loads(out)["model"] == "name\u202e\u009b"  # the data itself is unchanged
