"""What a thread that ran an engine must free before it ends.

A backend that keeps per-thread state (MLX: its streams) registers its cleanup with
:func:`on_thread_end`; every thread that made engine calls (the app's engine thread,
compare workers, a distributed follower) calls :func:`release_engine_thread` last. Part of
the engine contract, beside :mod:`anechat.engines.base`.
"""

from __future__ import annotations

from typing import Callable

#: what each backend registered (MLX: freeing the thread's streams)
_thread_cleanups: list[Callable[[], None]] = []


def on_thread_end(cleanup: Callable[[], None]) -> None:
    """A backend registers what a thread that ran it must free before it ends (once per backend)."""
    if cleanup not in _thread_cleanups:
        _thread_cleanups.append(cleanup)


def release_engine_thread() -> None:
    """Free what any loaded backend left in the calling thread (MLX: its streams).

    Call it last on every thread that made engine calls (the app's engine thread,
    compare workers) — a thread that ends holding MLX streams makes the process
    abort at exit. Never raises.
    """
    for cleanup in list(_thread_cleanups):
        try:
            cleanup()
        except Exception:
            pass
