"""When the terminal goes away (an SSH link drops, tmux is killed) the app quits.

A process started under another one (``make run``) does not get SIGHUP; its hung-up
terminal reads end-of-file for ever and Textual's input thread would spin on it at
100% CPU. The app asks its terminal once a second whether it hung up.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from anechat.tui.hangup import terminal_hung_up

pytestmark = pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")


def test_a_terminal_is_hung_up_once_its_other_end_closes():
    leader, follower = os.openpty()
    try:
        assert not terminal_hung_up(follower)
        os.write(leader, b"typed but not read\n")
        assert not terminal_hung_up(follower)  # pending input is not a hang-up, and is left unread
        os.close(leader)
        assert terminal_hung_up(follower)
    finally:
        os.close(follower)


def test_a_closed_descriptor_counts_as_gone():
    leader, follower = os.openpty()
    os.close(leader)
    os.close(follower)
    assert terminal_hung_up(follower)


def test_the_app_quits_when_its_terminal_hangs_up_without_a_sighup(tiny_model_dir):
    leader, follower = os.openpty()
    env = dict(os.environ, TERM="xterm-256color", COLUMNS="100", LINES="30")
    # a new session with the pty as plain stdio (not its controlling terminal): closing
    # the other end sends no SIGHUP, as under `make run`
    app = subprocess.Popen(
        [str(Path(sys.executable).parent / "anechat"), "-m", str(tiny_model_dir), "-e", "mlx"],
        stdin=follower, stdout=follower, stderr=follower, env=env, start_new_session=True,
    )
    os.close(follower)
    seen = bytearray()

    def read_screen() -> None:
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            seen.extend(chunk)

    reader = threading.Thread(target=read_screen, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while b"Enter sends" not in seen:  # the input box's hint: the app is drawn
            assert app.poll() is None, f"the app ended early: {bytes(seen[-2000:])!r}"
            assert time.monotonic() < deadline, "the app never drew its screen"
            time.sleep(0.1)
        os.close(leader)  # the terminal hangs up
        assert app.wait(timeout=60) == 129
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()
