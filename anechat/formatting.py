"""Human-readable figures shared by the CLI and the app."""

from __future__ import annotations

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


def stats_line(stats: GenerationStats) -> str:
    parts = [
        f"{stats.prompt_tokens} tok in" + (f" (+{stats.cached_tokens} cached)" if stats.cached_tokens else ""),
        f"{stats.generation_tokens} tok out",
        f"TTFT {stats.ttft_s:.2f} s",
        f"prefill {stats.prefill_tps:.1f} tok/s",
        f"decode {stats.decode_tps:.1f} tok/s",
        f"peak {human_bytes(stats.peak_memory_bytes)}",
        stats.finish_reason,
    ]
    line = " · ".join(parts)
    if stats.error:
        line += f" — {stats.error}"
    return line
