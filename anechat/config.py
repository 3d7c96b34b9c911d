"""anechat's config file (TOML, in the platformdirs config folder).

A broken file never stops the app: ``load_config()`` returns the defaults and a
one-line warning naming the file and the line of the TOML error.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anechat.paths import config_file

DEFAULTS: dict[str, Any] = {
    "theme": "anechat-dark",
    "engine": "mlx",
    "model": "smollm2-135m-instruct",
    "low_motion": False,
}


@dataclass
class Config:
    data: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    warning: str | None = None

    def get(self, key: str, default: Any = None) -> Any:
        if key in self.data:
            return self.data[key]
        return DEFAULTS.get(key, default)

    def section(self, name: str) -> dict[str, Any]:
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}


def load_config(path: Path | None = None) -> Config:
    path = path or config_file()
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config({}, path)
    except OSError as exc:
        return Config({}, path, f"cannot read {path} ({exc.strerror}); using defaults")
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        return Config({}, path, f"{path} is not UTF-8 text; using defaults (fix or delete the file)")
    except tomllib.TOMLDecodeError as exc:
        return Config({}, path, f"{path}: {exc}; using defaults (fix that line or delete the file)")
    return Config(data, path)


def save_config(updates: dict[str, Any], path: Path | None = None) -> str | None:
    """Merge ``updates`` into the file atomically. Returns a warning instead of raising.

    A file that does not parse is left untouched (the user's text is never lost).
    """
    path = path or config_file()
    current = load_config(path)
    if current.warning and path.exists():
        return f"not saving settings: {current.warning}"
    merged = {**current.data, **updates}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dumps_toml(merged))
        os.replace(tmp, path)
    except OSError as exc:
        return f"cannot write {path} ({exc.strerror}); settings not saved"
    return None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def dumps_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for anechat's flat settings and one level of tables."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict) and v is not None]
    for name, table in data.items():
        if isinstance(table, dict):
            lines.append(f"\n[{name}]")
            lines.extend(f"{k} = {_toml_value(v)}" for k, v in table.items() if v is not None and not isinstance(v, dict))
    return "\n".join(lines) + "\n"
