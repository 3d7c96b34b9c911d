"""Without a terminal (a pipe, /dev/null, cron, nohup) a bare `anechat` says so in one
line and exits at once, instead of starting an app nobody can see."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from anechat.tui.entry import NO_TERMINAL

ANECHAT = Path(sys.executable).with_name("anechat")


@pytest.mark.parametrize("stdin", [subprocess.DEVNULL, b""], ids=["stdin-devnull", "stdin-pipe"])
def test_bare_anechat_without_a_terminal_exits_with_one_line(stdin):
    run = subprocess.run(
        [str(ANECHAT)],
        stdin=subprocess.DEVNULL if stdin is subprocess.DEVNULL else None,
        input=None if stdin is subprocess.DEVNULL else stdin,
        capture_output=True,
        timeout=300,  # a hang is the failure this guards against
    )
    assert run.returncode == 2
    assert run.stderr.decode().strip() == NO_TERMINAL
    assert run.stdout == b""
