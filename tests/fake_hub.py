"""A small Hugging Face hub on 127.0.0.1 for download tests (threaded ``http.server``).

It answers what ``huggingface_hub`` 2.x asks when it pulls a model:

- ``GET /api/models/{repo}[/revision/{rev}]?blobs=True``: the commit (``sha``) and
  every file with its size, git blob id and LFS sha256;
- ``HEAD`` / ``GET /{repo}/resolve/{rev}/{path}``: ``X-Repo-Commit``, ``ETag`` and
  ``X-Linked-Etag`` / ``X-Linked-Size`` (LFS files), ``Content-Length``,
  ``Accept-Ranges`` and ``206`` answers to ``Range`` requests;
- errors the way the hub sends them: ``X-Error-Code: RepoNotFound`` (401 for an
  anonymous caller, as the real hub does), ``GatedRepo`` (401), ``RevisionNotFound``,
  ``EntryNotFound``; 401 "Invalid credentials" for a wrong token, 403 ``GatedRepo``
  for a logged-in caller who did not accept a gated repo's conditions.

``cut_once`` makes the server drop the connection half-way through a file, once.
Every request is logged as (method, path, Range header).

A repo can also play a hostile or broken hub (the values huggingface_hub would turn
into cache paths): ``api_sha`` announces another commit in the API, ``head_commit``
another ``X-Repo-Commit``, ``etags`` raw ``ETag`` header values per file, ``served``
other bytes than the ones announced (same size: a wrong sha256), and ``endless``
files are answered with a body that never ends (up to ``ENDLESS_CAP`` bytes, counted
in ``FakeHub.sent``).
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


ENDLESS_CAP = 128 * 1024 * 1024  # an "endless" body stops here, so a test that fails still ends


@dataclass
class FakeRepo:
    files: dict[str, bytes]
    gated: bool = False
    commit: str = ""
    api_sha: str | None = None  # the commit the API announces, when not ``commit``
    head_commit: str | None = None  # the X-Repo-Commit of file answers, when not ``commit``
    etags: dict[str, str] = field(default_factory=dict)  # file -> raw ETag header value
    served: dict[str, bytes] = field(default_factory=dict)  # file -> bytes sent instead of the announced ones
    endless: set[str] = field(default_factory=set)  # files whose GET body never ends

    def __post_init__(self) -> None:
        if not self.commit:
            digest = hashlib.sha1()
            for name in sorted(self.files):
                digest.update(name.encode() + self.files[name])
            self.commit = digest.hexdigest()

    @staticmethod
    def is_lfs(name: str) -> bool:
        return name.endswith((".safetensors", ".zip", ".bin", ".gguf")) or "/weights/" in name

    def etag(self, name: str) -> str:
        data = dict.__getitem__(self.files, name)  # metadata: never waits on a gated files mapping
        if self.is_lfs(name):
            return hashlib.sha256(data).hexdigest()
        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()

    def info(self, repo_id: str) -> dict:
        siblings = []
        for name, data in sorted(self.files.items()):
            sib = {"rfilename": name, "size": len(data), "blobId": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()}
            if self.is_lfs(name):
                sib["lfs"] = {"sha256": self.etag(name), "size": len(data), "pointerSize": 134}
            siblings.append(sib)
        return {
            "_id": "0" * 24,
            "id": repo_id,
            "modelId": repo_id,
            "sha": self.commit if self.api_sha is None else self.api_sha,
            "private": False,
            "disabled": False,
            "gated": "manual" if self.gated else False,
            "tags": [],
            "siblings": siblings,
        }


def model_folder_files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` keyed by its ``/``-separated relative path."""
    return {
        str(p.relative_to(folder)).replace("\\", "/"): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@dataclass
class FakeHub:
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    log: list[tuple[str, str, str | None]] = field(default_factory=list)
    cut_once: set[str] = field(default_factory=set)  # "repo/path" to cut mid-body once
    fail_once: dict[str, int] = field(default_factory=dict)  # "repo/path" -> HTTP status, answered once to GET
    url: str = ""
    valid_token: str = "hf_good_token"  # any other token is refused with 401
    sent: dict[str, int] = field(default_factory=dict)  # "repo/path" -> body bytes sent by GET answers

    def requests_for(self, name: str, method: str = "GET") -> list[str | None]:
        """Range headers of the ``method`` requests whose path ends with ``name``."""
        return [rng for m, path, rng in self.log if m == method and path.endswith("/" + name)]


def _make_handler(hub: FakeHub):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet
            pass

        def _error(self, status: int, code: str | None, message: str = "") -> None:
            body = json.dumps({"error": message or code or str(status)}).encode()
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            if message:
                self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _repo(self, owner: str, name: str) -> FakeRepo | None:
            return hub.repos.get(f"{owner}/{name}")

        def do_HEAD(self) -> None:
            self._handle()

        def do_GET(self) -> None:
            self._handle()

        def _handle(self) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.log.append((self.command, path, self.headers.get("Range")))
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                return self._api(parts[2], parts[3], parts[5] if len(parts) >= 6 and parts[4] == "revision" else "main")
            if len(parts) >= 5 and parts[2] == "resolve":
                return self._resolve(parts[0], parts[1], parts[3], "/".join(parts[4:]))
            self._error(404, None, "not found")

        def _api(self, owner: str, name: str, revision: str) -> None:
            repo = self._repo(owner, name)
            if repo is None:
                return self._error(401, "RepoNotFound", "Repository not found")
            if revision not in ("main", repo.commit):
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            body = json.dumps(repo.info(f"{owner}/{name}")).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _resolve(self, owner: str, name: str, revision: str, filename: str) -> None:
            repo = self._repo(owner, name)
            auth = self.headers.get("Authorization")
            if auth and auth != f"Bearer {hub.valid_token}":
                return self._error(401, None, "Invalid credentials in Authorization header")
            if repo is None:
                return self._error(401, "RepoNotFound", "Repository not found")
            if repo.gated and not auth:
                return self._error(401, "GatedRepo", "Access to this model is restricted.")
            if repo.gated:  # logged in, but the conditions were not accepted
                return self._error(403, "GatedRepo", "Access to this model is restricted.")
            if revision not in ("main", repo.commit):
                return self._error(404, "RevisionNotFound", "Invalid rev id")
            if filename not in repo.files:
                return self._error(404, "EntryNotFound", "Entry not found")
            key = f"{owner}/{name}/{filename}"
            if self.command == "GET" and key in hub.fail_once:
                return self._error(hub.fail_once.pop(key), None, "server error")
            # a HEAD answer reads the bytes without serving them: a files mapping that delays
            # serving a file (tests/tui's GatedFiles) delays only its GET
            data = dict.__getitem__(repo.files, filename) if self.command == "HEAD" else repo.files[filename]
            if self.command == "GET" and filename in repo.endless:
                return self._endless(repo, key, len(data))
            start, status = 0, 200
            rng = self.headers.get("Range")
            if rng and rng.startswith("bytes="):
                first = rng[len("bytes="):].split("-", 1)[0]
                start, status = int(first or 0), 206
            body = repo.served.get(filename, data)[start:]
            self.send_response(status)
            self._file_headers(repo, filename, len(data))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if self.command == "HEAD":
                return
            if key in hub.cut_once and start == 0:
                hub.cut_once.discard(key)
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self.wfile.write(body)
            hub.sent[key] = hub.sent.get(key, 0) + len(body)

        def _file_headers(self, repo: FakeRepo, filename: str, size: int) -> None:
            etag = repo.etags.get(filename, f'"{repo.etag(filename)}"')
            self.send_header("X-Repo-Commit", repo.commit if repo.head_commit is None else repo.head_commit)
            self.send_header("ETag", etag)
            if repo.is_lfs(filename):
                self.send_header("X-Linked-Etag", etag)
                self.send_header("X-Linked-Size", str(size))

        def _endless(self, repo: FakeRepo, key: str, size: int) -> None:
            """200 with no Content-Length: bytes until the client hangs up (or ``ENDLESS_CAP``)."""
            self.send_response(200)
            self._file_headers(repo, key.split("/", 2)[2], size)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Connection", "close")
            self.end_headers()
            self.close_connection = True
            block = b"x" * 65536
            try:
                while hub.sent.get(key, 0) < ENDLESS_CAP:
                    self.wfile.write(block)
                    hub.sent[key] = hub.sent.get(key, 0) + len(block)
            except OSError:  # the client stopped reading
                pass

    return Handler


class _ClosingServer(ThreadingHTTPServer):
    """A threaded HTTP server whose ``server_close()`` also ends its handler threads: a
    client's keep-alive connection would otherwise keep its handler waiting for the next
    request for as long as the process lives."""

    daemon_threads = True  # a handler stuck in a test's gate never holds the process at exit
    #: longest wait for one handler thread to end once its connection is shut
    JOIN_S = 20.0

    def __init__(self, address, handler) -> None:
        super().__init__(address, handler)
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []

    def process_request(self, request, client_address) -> None:
        thread = threading.Thread(target=self.process_request_thread, args=(request, client_address), daemon=True)
        with self._lock:
            self._connections.add(request)
            self._handlers = [t for t in self._handlers if t.is_alive()] + [thread]
        thread.start()

    def shutdown_request(self, request) -> None:
        with self._lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Stop listening, shut every open connection (a waiting handler reads its end) and
        wait for the handler threads."""
        super().server_close()
        with self._lock:
            connections, handlers = list(self._connections), list(self._handlers)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:  # the client closed it meanwhile
                pass
        for thread in handlers:
            thread.join(self.JOIN_S)


class FakeHubServer:
    """``with FakeHubServer(hub) as url:`` serves ``hub`` on 127.0.0.1 at a free port; leaving
    the block ends the server and every thread it started."""

    def __init__(self, hub: FakeHub) -> None:
        self.hub = hub
        self.server = _ClosingServer(("127.0.0.1", 0), _make_handler(hub))
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        host, port = self.server.server_address[:2]
        self.hub.url = f"http://{host}:{port}"
        return self.hub.url

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()
