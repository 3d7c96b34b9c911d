"""Safe by default: who may talk to ``anechat api``.

- It binds loopback unless told otherwise; a non-loopback address needs an API key
  (:func:`bind_refusal`), and then every request must carry ``Authorization: Bearer KEY``
  (401 otherwise). A key given on loopback is enforced the same way.
- Bound to loopback, the ``Host`` header must name loopback, so a DNS-rebinding web
  page gets 403.
- A request with an ``Origin`` header comes from a browser page: 403 unless that
  origin was allowed (``--allow-origin``).
- Request bodies are capped (``max_body``): a larger ``Content-Length`` gets 413 before
  anything is read.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from anechat.api.errors import ApiError
from anechat.addresses import is_loopback

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})
DEFAULT_MAX_BODY = 1 << 20


def bind_refusal(host: str, api_key: str | None) -> str | None:
    """Why ``anechat api`` must not listen on ``host`` with this key, or None."""
    if not is_loopback(host) and not api_key:
        return f"{host} is reachable from other machines: set an API key with --api-key KEY (or ANECHAT_API_KEY, or api_key in the config file)"
    return None


def _host_name(value: str) -> str:
    text = value.strip().lower()
    if text.startswith("["):
        return text[1:].partition("]")[0]
    return text.rpartition(":")[0] if text.count(":") == 1 else text


@dataclass(frozen=True)
class Guard:
    api_key: str | None = None
    allowed_origins: frozenset[str] = frozenset()
    loopback: bool = True  # bound to a loopback address
    max_body: int = DEFAULT_MAX_BODY

    def refusal(self, headers, content_length: int | None) -> ApiError | None:
        """Why a request with these headers is refused, or None."""
        if self.loopback and not is_loopback(_host_name(headers.get("Host", ""))):
            return ApiError("forbidden", "this server answers only to a loopback Host")
        origin = headers.get("Origin")
        if origin is not None and origin.rstrip("/") not in self.allowed_origins:
            return ApiError("forbidden", f"requests from web pages are refused (Origin {origin[:100]})", hint="allow it with --allow-origin")
        if self.api_key is not None and not self.key_ok(headers.get("Authorization")):
            return ApiError("unauthorized", "missing or wrong API key", hint="send the header Authorization: Bearer KEY")
        if content_length is not None and content_length > self.max_body:
            return ApiError("too_large", f"the request body has {content_length} bytes, more than the {self.max_body} this server accepts", hint="send a shorter request")
        return None

    def key_ok(self, authorization: str | None) -> bool:
        scheme, _, given = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), (self.api_key or "").encode())
