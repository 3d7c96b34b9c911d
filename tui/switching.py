"""Which model to load when the engine changes under a running conversation.

The same folder when the new engine runs it; otherwise a conversion of the same
model that it runs (``anechat convert NAME --to coreml`` writes
``NAME-coreml-ctx…``; ``--to mlx`` writes ``NAME-mlx…``).
"""

from __future__ import annotations

from pathlib import Path

_MARKERS = ("-coreml", "-coreai", "-mlx")


def base_name(name: str) -> str:
    """``tiny-llama-coreml-ctx512-lut6`` -> ``tiny-llama``; other names unchanged."""
    for marker in _MARKERS:
        head, sep, tail = name.partition(marker)
        if sep and (not tail or tail.startswith("-")):
            return head
    return name


def _same(a: Path | str, b: Path | str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return str(a) == str(b)


def switch_target(name: str, path: Path | str, engine: str, entries: list):
    """The catalog entry to load on ``engine`` to continue with model ``name``; None if none here."""
    for entry in entries:
        if _same(entry.path, path) or entry.name == name:
            if engine in entry.engines:
                return entry
    base = base_name(name)
    matches = [e for e in entries if engine in e.engines and base_name(e.name) == base]
    return sorted(matches, key=lambda e: e.name)[0] if matches else None


def no_target_hint(name: str, engine: str) -> str:
    base = base_name(name)
    if engine == "coreml":
        return f"no Core ML version of {base} here: convert it with anechat convert {base} --to coreml"
    return f"no version of {base} that {engine} runs is here: anechat convert {base} --to {engine}"
