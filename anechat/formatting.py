"""Human-readable figures shared by the CLI and the app."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from anechat.engines.base import GenerationStats


def human_bytes(n: int | float | None) -> str:
    if n is None:
        return "—"
    n = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def human_count(n: int | None) -> str:
    if n is None:
        return "—"
    if n >= 1e9:
        return f"{n / 1e9:.1f}B"
    if n >= 1e6:
        return f"{n / 1e6:.0f}M"
    if n >= 1e3:
        return f"{n / 1e3:.0f}K"
    return str(n)


def dropped_line(stats: GenerationStats) -> str:
    """What a context shift left out of the prompt, in one line ("" when nothing was)."""
    if not stats.dropped_tokens:
        return ""
    kept = stats.prompt_tokens + stats.cached_tokens
    return (
        f"the conversation did not fit the context: kept {kept} of {kept + stats.dropped_tokens} prompt tokens "
        f"(its start and the most recent part); {stats.dropped_tokens} were left out"
    )


def stats_line(
    stats: GenerationStats | Mapping[str, Any] | None, *, engine: str | None = None, model: str | None = None
) -> str:
    """One line of a turn's figures, the same in the CLI, the app and the history:
    ``12 tok in (+30 cached) · 40 tok out · TTFT 0.12 s · prefill 310.0 tok/s · decode 45.1 tok/s · mlx · qwen3-0.6b-4bit · peak 210.0 MB · stop``.

    ``stats`` is the engine's final record, or the dict of it the history keeps
    (figures it lacks are left out); nothing or an empty dict gives "".
    ``engine``/``model``: which engine and which model variant wrote the answer
    (a dict's own ``engine``/``model`` keys are used when these are not given).
    """
    if not stats:
        return ""
    get = stats.get if isinstance(stats, Mapping) else lambda key: getattr(stats, key, None)
    parts = []
    if get("prompt_tokens") is not None:
        cached = get("cached_tokens")
        parts.append(f"{get('prompt_tokens')} tok in" + (f" (+{cached} cached)" if cached else ""))
    if get("generation_tokens") is not None:
        parts.append(f"{get('generation_tokens')} tok out")
    for key, label, fmt in (("ttft_s", "TTFT", "{:.2f} s"), ("prefill_tps", "prefill", "{:.1f} tok/s"), ("decode_tps", "decode", "{:.1f} tok/s")):
        if get(key) is not None:
            parts.append(f"{label} {fmt.format(get(key))}")
    for who in (engine or get("engine"), model or get("model")):
        if who:
            parts.append(str(who))
    if get("peak_memory_bytes") is not None:
        parts.append(f"peak {human_bytes(get('peak_memory_bytes'))}")
    if get("finish_reason"):
        parts.append(str(get("finish_reason")))
    line = " · ".join(parts)
    if get("error"):
        line += f" — {get('error')}"
    return line


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 model``, ``2 models`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
