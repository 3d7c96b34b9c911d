"""The guard in front of ``anechat serve``: an aiohttp middleware (no Textual here).

Every request, page, static file, download or websocket, must

- name the served address in ``Host`` (loopback names when bound to loopback), so a
  DNS-rebinding page gets 403;
- carry no ``Origin`` or the served origin, so another web page open in the browser gets 403;
- carry the run's secret token: ``?token=`` on the first visit (the URL ``serve`` prints),
  which sets an HttpOnly, SameSite=Strict cookie, so the page's own requests and its
  websocket carry it. Without it: 403.

Each websocket is one app process; past ``max_sessions`` open ones, a new page or
websocket gets 503 with a sentence saying why.
"""

from __future__ import annotations

import hmac
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp import web

from anechat.addresses import is_loopback, is_wildcard

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
SESSION_PATH = "/ws"  # textual-serve's websocket: one app process each
PAGE_PATH = "/"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def _machine_names() -> set[str]:
    """Names and addresses this machine answers to (for a wildcard bind)."""
    import psutil

    names = {socket.gethostname().lower(), socket.getfqdn().lower()}
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family in (socket.AF_INET, socket.AF_INET6):
                names.add(address.address.split("%", 1)[0].lower())
    return names


def served_names(host: str) -> frozenset[str]:
    """The host names a browser may use for a server bound to ``host``."""
    if is_loopback(host):
        return LOOPBACK_NAMES
    if is_wildcard(host):
        return frozenset(LOOPBACK_NAMES | _machine_names())
    return frozenset({host.strip("[]").lower()})


def split_host(value: str) -> tuple[str, int | None]:
    """``name:port`` / ``[v6]:port`` / ``name`` -> (lower-case name, port or None)."""
    text = value.strip().lower()
    if text.startswith("["):
        name, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_text = text.partition(":") if text.count(":") == 1 else (text, "", "")
    if port_text and not port_text.isdigit():
        return "", None
    return name.rstrip("."), int(port_text) if port_text else None


@dataclass
class Guard:
    token: str
    port: int
    names: frozenset[str]
    max_sessions: int = 4
    sessions: int = 0

    @property
    def cookie(self) -> str:
        return f"anechat_serve_{self.port}"  # cookies are shared across ports: one name per port

    def host_ok(self, value: str | None) -> bool:
        if not value:
            return False
        name, port = split_host(value)
        return name in self.names and (port or 80) == self.port

    def origin_ok(self, value: str) -> bool:
        try:
            parts = urlsplit(value)
            port = parts.port or 80
        except ValueError:
            return False
        return parts.scheme == "http" and (parts.hostname or "") in self.names and port == self.port

    def token_ok(self, value: str | None) -> bool:
        return bool(value) and hmac.compare_digest(value.encode(), self.token.encode())  # type: ignore[union-attr]

    def refusal(self, request: web.Request) -> str | None:
        """Why ``request`` gets 403, or None."""
        if not self.host_ok(request.headers.get("Host")):
            return "this server does not answer to that Host"
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_ok(origin):
            return "requests from other web pages are refused"
        if not self.token_ok(request.query.get("token") or request.cookies.get(self.cookie)):
            return "missing or wrong token: open the URL that `anechat serve` printed"
        return None

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        why = self.refusal(request)
        if why is not None:
            return web.Response(status=403, text=f"anechat serve: forbidden — {why}\n")
        opens_session = request.path in (SESSION_PATH, PAGE_PATH)
        if opens_session and self.sessions >= self.max_sessions:
            return web.Response(
                status=503,
                text=f"anechat serve: {self.sessions} sessions are open, the most this server runs "
                "(--max-sessions); close a tab and reload\n",
            )
        if request.path != SESSION_PATH:
            response = await handler(request)
        else:
            self.sessions += 1
            try:
                response = await handler(request)
            finally:
                self.sessions -= 1
        if not response.prepared:
            if "token" in request.query:
                response.set_cookie(self.cookie, self.token, httponly=True, samesite="Strict", path="/")
            response.headers["Referrer-Policy"] = "no-referrer"
            response.headers["X-Frame-Options"] = "DENY"
        return response
