"""anechat's settings: the config file (TOML, in the platformdirs config folder) as a typed object.

    settings = load_config()
    settings.engine, settings.theme, settings.model_folders, settings.warnings

The file is a person's text, so nothing in it stops anechat: a file that does not
parse gives the defaults and one warning naming the file and the line of the TOML
error; a setting with a wrong type, an unknown engine or an unknown key gives one
warning each and is ignored. Every field says what it is for::

    model = "smollm2-135m-instruct"   # the model opened without -m
    engine = "mlx"                    # the engine used without -e: mlx or coreml
    theme = "anechat-dark"            # the app's theme (the app checks that it exists)
    low_motion = false                # fewer frames, no animations (slow SSH links)
    api_key = "..."                   # the key `anechat api` requires without --api-key / ANECHAT_API_KEY
    [models]
    folders = ["~/models"]            # more folders the catalog lists models from
    [keys]
    copy_code = "f3"                  # the app's keys, action name -> key (Ctrl+P lists the actions)
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anechat.engines.registry import ENGINE_NAMES
from anechat.paths import config_file


@dataclass(frozen=True)
class Settings:
    """anechat's settings, each with its default; ``load_config()`` reads them from the file."""

    #: the model the app and the commands open without ``-m`` (a catalog name or a path)
    model: str = "smollm2-135m-instruct"
    #: the engine used without ``-e``: one of ``anechat.engines.registry.ENGINE_NAMES``
    engine: str = "mlx"
    #: the app's theme; the app falls back to its default with a notice when no theme has this name
    theme: str = "anechat-dark"
    #: fewer frames and no animations (for slow SSH links)
    low_motion: bool = False
    #: the key every request to ``anechat api`` must carry (``Authorization: Bearer KEY``) when
    #: neither ``--api-key`` nor ``ANECHAT_API_KEY`` gives one; None: no key (loopback only)
    api_key: str | None = None
    #: ``[models] folders``: more folders the catalog lists models from, as written (``~`` and ``$VAR`` allowed)
    model_folders: tuple[str, ...] = ()
    #: ``[keys]``: the app's key for an action, action name -> key (e.g. ``copy_code = "f3"``);
    #: the app warns about names it has no action for
    keys: dict[str, str] = field(default_factory=dict)
    #: the file these settings came from
    path: Path | None = field(default=None, compare=False)
    #: one line per problem found in the file (each ignored setting, or the whole file)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    @property
    def warning(self) -> str | None:
        """All the warnings as one line (None when the file was fine)."""
        return "; ".join(self.warnings) or None


#: the top-level keys of the file and the type each must have
_TYPES: dict[str, type] = {"model": str, "engine": str, "theme": str, "low_motion": bool, "api_key": str}
_TABLES = ("models", "keys")


def _read(path: Path) -> tuple[dict[str, Any], str | None]:
    """The file's TOML data and a warning; a missing file is empty and fine."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}, None
    except OSError as exc:
        return {}, f"cannot read {path} ({exc.strerror}); using defaults"
    try:
        return tomllib.loads(raw.decode("utf-8")), None
    except UnicodeDecodeError:
        return {}, f"{path} is not UTF-8 text; using defaults (fix or delete the file)"
    except tomllib.TOMLDecodeError as exc:
        return {}, f"{path}: {exc}; using defaults (fix that line or delete the file)"


def _folders(path: Path, raw: Any, warnings: list[str]) -> tuple[str, ...]:
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        warnings.append(f"{path}: [models] folders must be a list of paths, not {raw!r}")
        return ()
    folders = []
    for item in raw:
        if not isinstance(item, str) or not item.strip():
            warnings.append(f"{path}: [models] folders: {item!r} is not a path; ignored")
        else:
            folders.append(item)
    return tuple(folders)


def settings_from(data: dict[str, Any], path: Path) -> Settings:
    """Typed settings from the file's data: what has the wrong type or is unknown is
    left at its default, with one warning each."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for key, value in data.items():
        kind = _TYPES.get(key)
        if key in _TABLES:
            continue
        if kind is None:
            warnings.append(f"{path}: unknown setting '{key}'; ignored (known: {', '.join([*_TYPES, *_TABLES])})")
        elif not isinstance(value, kind) or (kind is str and not value.strip()):
            wanted = "true or false" if kind is bool else "a non-empty text in quotes"
            warnings.append(f"{path}: {key} = {value!r} is not {wanted}; using the default")
        elif key == "engine" and value not in ENGINE_NAMES:
            warnings.append(f"{path}: engine {value!r} is unknown (use one of {', '.join(ENGINE_NAMES)}); using the default")
        else:
            values[key] = value
    models = data.get("models", {})
    if not isinstance(models, dict):
        warnings.append(f"{path}: 'models' must be a table ([models]); ignored")
    elif "folders" in models:
        values["model_folders"] = _folders(path, models["folders"], warnings)
    keys = data.get("keys", {})
    if not isinstance(keys, dict):
        warnings.append(f"{path}: 'keys' must be a table ([keys], action = \"key\"); ignored")
    else:
        values["keys"] = _keys(path, keys, warnings)
    return Settings(**values, path=path, warnings=tuple(warnings))


def _keys(path: Path, raw: dict[str, Any], warnings: list[str]) -> dict[str, str]:
    keys = {}
    for action, key in raw.items():
        if not isinstance(key, str) or not key.strip():
            warnings.append(f"{path}: [keys] {action} = {key!r} is not a key in quotes (e.g. \"ctrl+y\"); ignored")
        else:
            keys[action] = key.strip()
    return keys


def load_config(path: Path | None = None) -> Settings:
    """The settings in ``path`` (default: anechat's config file); never raises."""
    path = path or config_file()
    data, warning = _read(path)
    if warning:
        return Settings(path=path, warnings=(warning,))
    return settings_from(data, path)


def save_config(updates: dict[str, Any], path: Path | None = None) -> str | None:
    """Merge ``updates`` (setting name -> value) into the file atomically.

    Returns a warning instead of raising. A file that does not parse is left
    untouched (the person's text is never lost); other keys and tables are kept.
    """
    path = path or config_file()
    unknown = set(updates) - set(_TYPES)
    if unknown:
        raise ValueError(f"not settings anechat saves: {', '.join(sorted(unknown))}")
    current, warning = _read(path)
    if warning and path.exists():
        return f"not saving settings: {warning}"
    merged = {**current, **updates}
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
