"""One long-lived thread that owns every engine call (load, generate, unload).

Engines are not thread-safe (one generation at a time), so the app never
touches an engine from two threads, nor from the event loop: Textual workers
hand blocking calls to this thread and await the result.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

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
        """Run ``cleanup`` (e.g. unload) on the engine thread, then stop it.

        (The MLX engine runs on a stream usable from any thread and needs no
        per-thread teardown; see anechat.engines.mlx.runtime.generation_stream.)
        """
        if self._closed:
            return
        self._closed = True

        if cleanup is not None:
            try:
                self._pool.submit(cleanup).result(timeout=30)
            except Exception:
                pass  # closing: a failed unload must not stop the app from exiting
        self._pool.shutdown(wait=False, cancel_futures=True)
