"""One long-lived thread that makes every engine call (load, generate, unload).

Engines are not thread-safe and MLX keeps per-thread streams, so the app and the API
never call an engine from an event loop nor from two threads: they hand blocking jobs
to this thread and await them. (Memory gauges read ``Engine.memory()``, a snapshot the
engine keeps: that reads a value, it does not call into the engine.) ``close()`` runs a last cleanup there and frees what
engines left in the thread (``release_engine_thread``), so the process exits cleanly.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, Callable, TypeVar

from anechat.engines.threads import release_engine_thread

T = TypeVar("T")


class EngineThread:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="anechat-engine")
        self._closed = False

    def submit(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future:
        return self._pool.submit(partial(fn, *args, **kwargs))

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the engine thread and await its result."""
        return await asyncio.wrap_future(self.submit(fn, *args, **kwargs))

    def close(self, cleanup: Callable[[], None] | None = None, timeout: float = 30) -> None:
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
            self._pool.submit(last_job).result(timeout=timeout)
        except Exception:
            pass  # shutting down: a failed unload must not stop the exit
        self._pool.shutdown(wait=False, cancel_futures=True)
