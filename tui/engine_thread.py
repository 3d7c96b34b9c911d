"""One long-lived thread that owns every engine call (load, generate, unload).

Engines are not thread-safe (one generation at a time), so the app never
touches an engine from two threads, nor from the event loop: Textual workers
hand blocking calls to this thread and await the result. (Memory gauges read
``Engine.memory()``, a snapshot the engine keeps: that reads a value, it does not
call into the engine.)
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

from anechat.engines.base import release_engine_thread

T = TypeVar("T")


class EngineThread:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anechat-engine")
        self._closed = False

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the engine thread and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, partial(fn, *args, **kwargs))

    def close(self, cleanup: Callable[[], None] | None = None) -> None:
        """Run ``cleanup`` (e.g. unload) on the engine thread, release what engines left in it, stop it."""
        if self._closed:
            return
        self._closed = True

        def last_job() -> None:
            try:
                if cleanup is not None:
                    cleanup()
            finally:
                release_engine_thread()

        try:
            self._pool.submit(last_job).result(timeout=30)
        except Exception:
            pass  # closing: a failed unload must not stop the app from exiting
        self._pool.shutdown(wait=False, cancel_futures=True)
