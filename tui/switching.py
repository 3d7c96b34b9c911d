"""Which model to load when the engine changes under a running conversation: the same
folder when the new engine runs it, otherwise the recommended variant of the same model
for that engine (the catalog's variant lookup, :mod:`anechat.catalog.variants`)."""

from __future__ import annotations

from pathlib import Path

from anechat.catalog.variants import choose_variant, group_models
from anechat.engines.errors import AnechatError
from anechat.tui.same_model import same_path


def switch_target(name: str, path: Path | str, engine: str, entries: list):
    """The catalog entry to load on ``engine`` to continue with model ``name`` (at ``path``);
    None when no variant of it runs there."""
    current = next((e for e in entries if same_path(e.path, path)), None) or next((e for e in entries if e.name == name), None)
    if current is None:
        return None
    try:
        return choose_variant(group_models(entries), current, engine).entry
    except AnechatError:
        return None


def no_target_hint(name: str, path: Path | str, engine: str, entries: list) -> str:
    """Why there is nothing to switch to, and the command that makes a variant."""
    current = next((e for e in entries if same_path(e.path, path)), None)
    if current is None:
        return f"no {engine} variant of {name} here — make one: anechat convert {name} --to {engine}"
    try:
        choose_variant(group_models(entries), current, engine)
    except AnechatError as exc:
        return str(exc)
    return f"{name} has a {engine} variant"
