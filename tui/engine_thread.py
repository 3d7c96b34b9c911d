"""One long-lived thread that owns every engine call (load, generate, unload).

Engines are not thread-safe (one generation at a time), so the app never
touches an engine from two threads, nor from the event loop: Textual workers
hand blocking calls to this thread and await the result.
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def release_thread_streams() -> None:
    """Destroy the MLX streams this thread created, if MLX is loaded at all.

    Importing ``mlx_lm.generate`` creates a stream at module level, in whichever
    thread imports it first — here, the engine thread. A thread that still owns
    streams when it ends makes the process abort at exit ("terminate called
    without an active exception"), so the engine thread releases them last.
    """
    mx = sys.modules.get("mlx.core")
    clear = getattr(mx, "clear_streams", None)
    if clear is not None:
        clear()


class EngineThread:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anechat-engine")
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the engine thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def close(self, cleanup: Callable[[], None] | None = None) -> None:
        """Run ``cleanup`` (e.g. unload) on the engine thread, release its MLX streams, stop it."""
        if self._closed:
            return
        self._closed = True

        def last_job() -> None:
            try:
                if cleanup is not None:
                    cleanup()
            finally:
                release_thread_streams()

        try:
            self._pool.submit(last_job).result(timeout=30)
        except Exception:
            pass  # closing: a failed unload must not stop the app from exiting
        self._pool.shutdown(wait=False, cancel_futures=True)
