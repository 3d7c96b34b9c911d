"""The app as rank 0 of a two-rank session (tests/ranks_app.py, a process of its own:
mx.distributed joins one ring per process), driven by its pilot: it answers, says
`mlx · 2 ranks (pipeline)` in the status line and each rank's memory in the panel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from anechat.engines.registry import availability

pytestmark = pytest.mark.skipif(not availability("mlx").ok, reason="the MLX engine is not available here")


def test_the_app_drives_a_two_rank_session(tiny_model_dir):
    script = Path(__file__).parent.parent / "ranks_app.py"
    done = subprocess.run([sys.executable, str(script), str(tiny_model_dir)], capture_output=True, text=True, timeout=400, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "mlx · 2 ranks (pipeline)" in seen["status"]
    assert seen["tokens"] == 16 and seen["answer"]
    memory = seen["memory"]
    assert "rank 0 127.0.0.1" in memory and "rank 1 127.0.0.1" in memory and memory.count("weights") == 2
