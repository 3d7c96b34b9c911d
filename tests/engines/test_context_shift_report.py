"""A Core ML context shift is never silent: the final stats say how many prompt tokens
were left out, and `anechat run` says so in one stderr line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("coremltools")

from anechat.engines.base import SamplingParams  # noqa: E402
from anechat.engines.coreml.engine import CoreMLEngine  # noqa: E402
from anechat.formatting import dropped_line  # noqa: E402

LONG_STORY = " ".join(["The quick brown fox jumps over the lazy dog."] * 20)  # far more than a 64-token window


def test_a_shifted_prompt_reports_how_many_tokens_it_left_out(tiny_coreml_dir):
    engine = CoreMLEngine()
    session = engine.load(tiny_coreml_dir)
    try:
        messages = [{"role": "user", "content": LONG_STORY}]
        whole = session.count_tokens(messages)
        stats = list(session.generate(messages, SamplingParams(max_tokens=4)))[-1]
        kept = stats.prompt_tokens + stats.cached_tokens
        assert stats.error is None and stats.dropped_tokens == whole - kept > 0
        assert f"kept {kept} of {whole} prompt tokens" in dropped_line(stats)
        short = list(session.generate([{"role": "user", "content": "Hi"}], SamplingParams(max_tokens=2)))[-1]
        assert short.dropped_tokens == 0 and dropped_line(short) == ""
    finally:
        engine.unload()


def test_anechat_run_says_in_one_stderr_line_how_much_of_the_prompt_it_kept(tiny_coreml_dir):
    anechat = Path(sys.executable).parent / "anechat"
    result = subprocess.run(
        [str(anechat), "run", LONG_STORY, "-m", str(tiny_coreml_dir), "-e", "coreml", "--max-tokens", "4"],
        capture_output=True, timeout=300, env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stderr.decode()
    notes = [line for line in result.stderr.decode().splitlines() if "did not fit the context" in line]
    assert len(notes) == 1 and "kept " in notes[0] and "were left out" in notes[0]
