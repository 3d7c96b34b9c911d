"""`anechat serve`: the real command on 127.0.0.1, behind its guard (token, Host, Origin, session cap)."""

from __future__ import annotations

import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time

import pytest

from anechat.tui.serve import app_command

TOKEN = "test-token-0123456789"
WS_HEADERS = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """A running `anechat serve` process; ``url`` is the line it printed to open."""

    def __init__(self, *args: str, token: str | None = TOKEN) -> None:
        self.port = _free_port()
        env = dict(os.environ)
        env.pop("ANECHAT_SERVE_TOKEN", None)
        if token:
            env["ANECHAT_SERVE_TOKEN"] = token
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "anechat.tui.entry", "serve", "--port", str(self.port), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.errors: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stdout], daemon=True).start()
        threading.Thread(target=lambda: self.errors.extend(self.proc.stderr), daemon=True).start()
        self.url = self._wait_for_url()

    def _wait_for_url(self) -> str:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                continue
            found = re.search(r"open (http://\S+)", line)
            if found:
                return found.group(1)
        self.close()
        raise AssertionError(f"anechat serve printed no URL: {''.join(self.errors)}")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Answer:
    def __init__(self, status: int, head: str, rest: bytes, sock: socket.socket) -> None:
        self.status, self.head, self.rest, self.sock = status, head, rest, sock

    def body(self) -> str:
        data = self.rest + self.sock.makefile("rb").read()
        self.sock.close()
        return data.decode()


def request(port: int, path: str, headers: dict[str, str] | None = None) -> Answer:
    """One raw HTTP/1.1 request (the test sets Host and Origin itself); the socket stays open."""
    headers = {"Host": f"127.0.0.1:{port}", "Connection": "close"} | (headers or {})
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall((f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    text = head.decode("latin-1")
    return Answer(int(text.split(" ", 2)[1]), text, rest, sock)


def status(port: int, path: str, headers: dict[str, str] | None = None) -> int:
    answer = request(port, path, headers)
    answer.sock.close()
    return answer.status


def ws(headers: dict[str, str] | None = None) -> dict[str, str]:
    return WS_HEADERS | (headers or {})


@pytest.fixture(scope="module")
def served():
    server = Served()
    yield server
    server.close()


def test_the_printed_url_carries_a_random_token_that_opens_the_app_page_and_sets_a_cookie():
    server = Served(token=None)
    try:
        path = server.url.split(f":{server.port}", 1)[1]
        token = path.split("token=", 1)[1]
        assert len(token) >= 24
        answer = request(server.port, path)
        page, head = answer.body(), answer.head
        assert answer.status == 200 and "anechat" in page and f"ws://127.0.0.1:{server.port}/ws" in page
        cookie = re.search(rf"Set-Cookie: (anechat_serve_{server.port}=[^;]+);.*HttpOnly.*SameSite=Strict", head)
        assert cookie, head
        # the page's own requests carry the cookie, not the token
        assert status(server.port, "/static/js/textual.js", {"Cookie": cookie.group(1)}) == 200
        assert status(server.port, "/", {"Cookie": f"anechat_serve_{server.port}=guess"}) == 403
    finally:
        server.close()


@pytest.mark.parametrize("path", ["/", "/?token=wrong", "/static/js/textual.js", "/download/x"])
def test_a_request_without_the_token_is_forbidden(served, path):
    assert status(served.port, path) == 403


def test_the_websocket_without_the_token_is_forbidden(served):
    assert status(served.port, "/ws", ws()) == 403
    assert status(served.port, "/ws?token=wrong", ws()) == 403


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_the_token_opens_the_page_under_every_loopback_name(served, host):
    assert status(served.port, f"/?token={TOKEN}", {"Host": f"{host}:{served.port}"}) == 200


@pytest.mark.parametrize("host", ["evil.example:{port}", "127.0.0.1:1", "rebound.attacker.test:{port}", ""])
def test_a_foreign_host_is_forbidden_even_with_the_token(served, host):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: its Host gives it away."""
    headers = {"Host": host.format(port=served.port)}
    assert status(served.port, f"/?token={TOKEN}", headers) == 403
    assert status(served.port, f"/ws?token={TOKEN}", ws(headers)) == 403


@pytest.mark.parametrize("origin", ["http://evil.example", "http://localhost:1", "https://127.0.0.1:{port}", "null"])
def test_a_foreign_origin_is_forbidden_even_with_the_token(served, origin):
    """Another web page open in the browser sends its own Origin (the cookie would travel too)."""
    headers = {"Origin": origin.format(port=served.port), "Cookie": f"anechat_serve_{served.port}={TOKEN}"}
    assert status(served.port, "/", headers) == 403
    assert status(served.port, "/ws", ws(headers)) == 403


def test_sessions_past_the_cap_are_refused_with_a_reason():
    server = Served("--max-sessions", "1")
    try:
        origin = {"Origin": f"http://127.0.0.1:{server.port}"}
        first = request(server.port, f"/ws?token={TOKEN}", ws(origin))
        assert first.status == 101  # the token, our Host and our Origin: a session (an app process) starts
        assert status(server.port, f"/ws?token={TOKEN}", ws(origin)) == 503
        refused = request(server.port, f"/?token={TOKEN}")
        assert refused.status == 503
        assert "1 sessions are open, the most this server runs (--max-sessions); close a tab and reload" in refused.body()
        first.sock.close()  # the tab closes: its session ends and the page opens again
        deadline = time.monotonic() + 30
        while status(server.port, f"/?token={TOKEN}") != 200:
            assert time.monotonic() < deadline, "the closed session was never released"
            time.sleep(0.1)
    finally:
        server.close()


def test_a_non_loopback_host_is_refused_without_allow_remote():
    result = subprocess.run(
        [sys.executable, "-m", "anechat.tui.entry", "serve", "--host", "0.0.0.0", "--port", str(_free_port())],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "anechat: refusing to serve on 0.0.0.0: it is reachable from other machines; "
        "use an SSH tunnel to 127.0.0.1 (ssh -L), or pass --allow-remote"
    ]


def test_allow_remote_still_needs_the_token_and_warns_that_traffic_is_plain_http():
    server = Served("--host", "0.0.0.0", "--allow-remote")
    try:
        assert status(server.port, "/") == 403
        assert status(server.port, f"/?token={TOKEN}") == 200
        assert "WARNING: 0.0.0.0:" in "".join(server.errors) and "plain HTTP" in "".join(server.errors)
        assert "ssh -L" in "".join(server.errors)
    finally:
        server.close()


@pytest.mark.parametrize(("port", "message"), [
    ("0", "anechat: --port must be between 1 and 65535, not 0"),
    ("70000", "anechat: --port must be between 1 and 65535, not 70000"),
    ("http", "anechat: --port must be a number between 1 and 65535, not 'http'"),
])
def test_a_port_outside_1_to_65535_is_one_line(port, message):
    result = subprocess.run([sys.executable, "-m", "anechat.tui.entry", "serve", "--port", port], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and result.stderr.splitlines() == [message]


def test_the_served_command_runs_this_python_and_the_app_module():
    assert app_command().endswith("-m anechat.tui") and sys.executable in app_command()
