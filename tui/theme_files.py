"""Themes are data: TOML files in anechat/themes (and the user's <config>/themes)."""

from __future__ import annotations

import tomllib
from dataclasses import fields
from importlib import resources
from pathlib import Path

from textual.app import App
from textual.theme import Theme

from anechat.paths import config_dir

_THEME_KEYS = {f.name for f in fields(Theme)}

DEFAULT_THEME = "anechat-dark"


def theme_from_toml(text: str, origin: str) -> Theme:
    """One Theme from a TOML document; ValueError names the file and the problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{origin}: {exc}") from None
    unknown = set(data) - _THEME_KEYS
    if unknown:
        raise ValueError(f"{origin}: unknown keys {', '.join(sorted(unknown))}")
    if not data.get("name") or not data.get("primary"):
        raise ValueError(f"{origin}: a theme needs at least 'name' and 'primary'")
    variables = data.get("variables", {})
    if not isinstance(variables, dict):
        raise ValueError(f"{origin}: [variables] must be a table")
    data["variables"] = {str(k): str(v) for k, v in variables.items()}
    return Theme(**data)


def _sources() -> list[tuple[str, str]]:
    found = []
    for item in sorted(resources.files("anechat.themes").iterdir(), key=lambda p: p.name):
        if item.name.endswith(".toml"):
            found.append((item.read_text(encoding="utf-8"), item.name))
    user = config_dir() / "themes"
    if user.is_dir():
        for path in sorted(Path(user).glob("*.toml")):
            try:
                found.append((path.read_text(encoding="utf-8"), str(path)))
            except (OSError, UnicodeDecodeError) as exc:
                found.append(("", f"{path}: {exc}"))
    return found


def load_themes() -> tuple[list[Theme], list[str]]:
    """Every theme file that parses, and one warning line per file that does not."""
    themes, warnings = [], []
    for text, origin in _sources():
        try:
            themes.append(theme_from_toml(text, origin))
        except (ValueError, TypeError) as exc:
            warnings.append(f"theme skipped: {exc}")
    return themes, warnings


def install_themes(app: App, wanted: str | None) -> list[str]:
    """Register every theme file with ``app`` and switch to ``wanted`` (else the default);
    returns one warning line per file skipped and for an unknown ``wanted``."""
    themes, warnings = load_themes()
    for theme in themes:
        app.register_theme(theme)
    wanted = wanted or DEFAULT_THEME
    if wanted not in app.available_themes:
        warnings.append(f"unknown theme {wanted!r}; using {DEFAULT_THEME} (Ctrl+P → theme lists them)")
        wanted = DEFAULT_THEME if DEFAULT_THEME in app.available_themes else "textual-dark"
    app.theme = wanted
    return warnings
