"""anechat's errors in OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``.

The message is the same one line the CLI prints (``str(error)``: message — hint);
the error's ``kind`` picks the HTTP status.
"""

from __future__ import annotations

from aiohttp import web

from anechat.engines.errors import AnechatError, InvalidParameter

#: AnechatError.kind -> (HTTP status, OpenAI error type)
STATUS_BY_KIND: dict[str, tuple[int, str]] = {
    "invalid_parameter": (400, "invalid_request_error"),
    "invalid_request": (400, "invalid_request_error"),
    "context_overflow": (400, "invalid_request_error"),
    "model_not_found": (404, "not_found_error"),
    "not_found": (404, "not_found_error"),
    "too_large": (413, "invalid_request_error"),
    "wrong_format": (422, "invalid_request_error"),
    "backend_unavailable": (422, "invalid_request_error"),
    "unauthorized": (401, "authentication_error"),
    "forbidden": (403, "permission_error"),
    "busy": (429, "rate_limit_error"),
    "out_of_memory": (500, "server_error"),
}
#: OpenAI's own codes where one exists
CODE_BY_KIND = {"context_overflow": "context_length_exceeded", "model_not_found": "model_not_found"}


class ApiError(AnechatError):
    """A refusal the API finds itself (bad JSON, too large, unauthorized, busy)."""

    def __init__(self, kind: str, message: str, hint: str | None = None, *, param: str | None = None, retry_after: int | None = None) -> None:
        super().__init__(message, hint, kind=kind)
        self.param = param
        self.retry_after = retry_after


def bad_param(param: str, message: str) -> InvalidParameter:
    error = InvalidParameter(message)
    error.param = param  # type: ignore[attr-defined]
    return error


def status_of(error: AnechatError) -> int:
    return STATUS_BY_KIND.get(error.kind, (500, "server_error"))[0]


def error_body(error: AnechatError) -> dict:
    status, kind = STATUS_BY_KIND.get(error.kind, (500, "server_error"))
    return {
        "error": {
            "message": str(error),
            "type": kind,
            "param": getattr(error, "param", None),
            "code": CODE_BY_KIND.get(error.kind, error.kind),
        }
    }


def error_response(error: AnechatError) -> web.Response:
    headers = {}
    if getattr(error, "retry_after", None):
        headers["Retry-After"] = str(error.retry_after)
    return web.json_response(error_body(error), status=status_of(error), headers=headers)


def http_error(exc: web.HTTPException) -> ApiError:
    """aiohttp's own refusals (413, 404 route, 405) as API errors."""
    if exc.status == 413:
        return ApiError("too_large", f"the request body is larger than the server accepts ({exc.text or exc.reason})", hint="send a shorter request")
    if exc.status == 404:
        return ApiError("not_found", "no such endpoint", hint="see GET /v1/models, POST /v1/chat/completions, POST /v1/completions, GET /health")
    if exc.status == 405:
        return ApiError("invalid_request", f"method not allowed ({exc.reason})")
    return ApiError("invalid_request" if exc.status < 500 else "error", exc.reason or f"HTTP {exc.status}")
