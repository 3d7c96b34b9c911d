"""The recorded link from a conversion to its source: ``anechat-source.json`` in the folder.

Every conversion (``anechat.convert.jobs``, whatever its target engine) writes it last,
so the catalog groups a model's variants by what they were made from, never by their
folder names. It holds the source's identity (catalog name, folder, a digest of its
``config.json``, hub repo id), the target engine, the converter and its options, and
optional quality figures a later check may add (``{"label": value}``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

ORIGIN_FILE = "anechat-source.json"
ORIGIN_VERSION = 1


@dataclass(frozen=True)
class Origin:
    """Where a converted folder came from. ``source_*`` name the *root* model: converting a
    conversion records the original source again (and the folder it read as ``converted_from``)."""

    source_name: str
    source_path: str
    engine: str
    converter: str = ""
    options: dict = field(default_factory=dict, compare=False, hash=False)
    source_config_sha256: str | None = None
    source_repo_id: str | None = None
    converted_from: str | None = None
    created: str = ""
    quality: dict = field(default_factory=dict, compare=False, hash=False)

    def to_dict(self) -> dict:
        return {"version": ORIGIN_VERSION, **asdict(self)}


def config_digest(folder: Path) -> str | None:
    """sha256 of ``folder/config.json`` (None when there is none): the source's identity
    when its folder has moved."""
    try:
        return hashlib.sha256((Path(folder) / "config.json").read_bytes()).hexdigest()
    except OSError:
        return None


def read_origin(folder: Path) -> Origin | None:
    """The recorded origin of ``folder``, or None (no file, or one that does not parse:
    a model folder is untrusted input, so bad values are dropped, never raised)."""
    try:
        data = json.loads((Path(folder) / ORIGIN_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict):
        return None
    name, path, engine = data.get("source_name"), data.get("source_path"), data.get("engine")
    if not all(isinstance(v, str) and v.strip() for v in (name, path, engine)):
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) and value else None

    def table(key: str) -> dict:
        value = data.get(key)
        return value if isinstance(value, dict) else {}

    return Origin(
        source_name=name.strip().lower(),
        source_path=path,
        engine=engine.strip().lower(),
        converter=text("converter") or "",
        options=table("options"),
        source_config_sha256=text("source_config_sha256"),
        source_repo_id=text("source_repo_id"),
        converted_from=text("converted_from"),
        created=text("created") or "",
        quality={str(k): v for k, v in table("quality").items() if isinstance(v, (int, float, str))},
    )


def write_origin(folder: Path, origin: Origin) -> Path:
    """Write ``origin`` into ``folder`` (complete or not at all); returns the file."""
    target = Path(folder) / ORIGIN_FILE
    tmp = target.with_name(f".{ORIGIN_FILE}.{os.getpid()}")
    tmp.write_text(json.dumps(origin.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
    return target
