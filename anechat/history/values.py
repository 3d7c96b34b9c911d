"""Checking and converting what callers hand the store: text, statuses, params, stats."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from typing import Any

from anechat.history.errors import InvalidInput
from anechat.history.records import STATUSES


def text(what: str, value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be text, not {type(value).__name__}")
    # lone surrogates (undecodable bytes) cannot be stored as UTF-8
    return _SURROGATE.sub("\ufffd", value) if _has_surrogates(value) else value


_SURROGATE = re.compile("[\ud800-\udfff]")


def _has_surrogates(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


_SESSION_ID = re.compile(r"[0-9a-f]{32}")


def session_id(value: object) -> str:
    if not isinstance(value, str) or _SESSION_ID.fullmatch(value) is None:
        raise InvalidInput(f"a session id is 32 lowercase hex characters, not {value!r}")
    return value


def status(value: str) -> str:
    if value not in STATUSES:
        raise InvalidInput(f"unknown message status {value!r}: use one of {', '.join(STATUSES)}")
    return value


def params_json(params: Any) -> str:
    if params is None:
        params = {}
    elif dataclasses.is_dataclass(params) and not isinstance(params, type):
        params = dataclasses.asdict(params)
    if not isinstance(params, dict):
        raise InvalidInput(f"sampling params must be a dict or a dataclass, not {type(params).__name__}")
    try:
        return json.dumps(params, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"sampling params cannot be saved as JSON: {e}") from e


def stats_dict(stats: Any) -> dict | None:
    if stats is None:
        return None
    if hasattr(stats, "as_dict"):
        stats = stats.as_dict()
    elif dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        stats = dataclasses.asdict(stats)
    if not isinstance(stats, dict):
        raise InvalidInput(f"stats must be a GenerationStats or a dict, not {type(stats).__name__}")
    # the text is the message itself; JSON has no NaN/inf (a zero-length timing can make one)
    return {str(k): _json_safe(v) for k, v in stats.items() if k != "text"}


def _json_safe(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return str(value)


def int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def loads(value: str | None):
    if value is None:
        return None
    try:
        return json.loads(value)
    except ValueError:
        return None
