"""`anechat serve`: textual-serve answers on localhost with a page that starts the app."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

from anechat.tui.serve import app_command


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_on_localhost_with_the_app_page():
    port = _free_port()
    code = f"from anechat.tui.serve import serve; serve(port={port})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        page = None
        while page is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read().decode()
            except OSError:
                time.sleep(0.2)
        assert page is not None, proc.stdout.read().decode() if proc.poll() is not None else "no answer"
        assert "anechat" in page and "ws" in page  # the page opens a websocket to run the app
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_served_command_runs_this_python_and_the_app_module():
    assert app_command().endswith("-m anechat.tui") and sys.executable in app_command()
