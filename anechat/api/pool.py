"""The models the API holds: which to load for a request, which to unload, and the
one-generation-at-a-time queue of each.

A request names a model (a catalog name, the model given with ``-m``, or an alias
seen before) and maybe an engine; the pool loads it on the engine thread if it is
not loaded (through :class:`~anechat.chat.controller.ChatController`, which marks it
in the in-use registry so ``anechat models rm`` refuses while it is held). Before a
load, idle models are unloaded, least recently used first, while memory does not
allow the new one beside them. Each model answers one request at a time; up to
``max_queue`` more wait their turn, beyond that a request gets 429 with Retry-After.

Prompt-cache reuse: every loaded model keeps a small LRU of sessions, up to
``sessions`` of them (:mod:`anechat.api.sessions`), each with its own KV cache reused
for the longest common token prefix (:mod:`anechat.engines.session`), so clients that
resend growing conversations, even alternating, prefill only their new tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

from anechat.chat.engine_thread import EngineThread
from anechat.api.errors import ApiError
from anechat.api.sessions import SessionLRU
from anechat.chat.controller import ChatController, LoadedModel
from anechat.engines.errors import ModelNotFound

#: memory a new model needs beside its weights (KV cache, buffers), as a factor and a floor
MEMORY_FACTOR = 1.3
MEMORY_FLOOR = 256 << 20


@dataclass
class Slot:
    """One loaded model and its queue."""

    controller: ChatController
    loaded: LoadedModel
    aliases: set[str]
    sessions: SessionLRU
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: int = 0
    last_used: float = field(default_factory=time.monotonic)
    turn_s: float = 1.0  # a running average of how long a turn takes (for Retry-After)

    @property
    def key(self) -> tuple[str, str]:
        return (self.loaded.name, self.loaded.engine)

    @property
    def idle(self) -> bool:
        return not self.lock.locked() and self.waiting == 0


def _path_like(name: str) -> bool:
    return name.startswith(("/", "~", ".")) or Path(name).expanduser().exists()


def memory_available() -> int:
    import psutil

    return int(psutil.virtual_memory().available)


class ModelPool:
    def __init__(self, thread: EngineThread, *, default_engine: str, max_queue: int, sessions: int = 4) -> None:
        self.thread = thread
        self.default_engine = default_engine
        self.max_queue = max_queue
        self.sessions_per_model = sessions
        self.slots: dict[tuple[str, str], Slot] = {}
        self._load_lock = asyncio.Lock()

    # -- finding and loading ------------------------------------------------------
    def _loaded(self, name: str, engine: str | None) -> Slot | None:
        found = [s for s in self.slots.values() if name in s.aliases and (engine is None or s.loaded.engine == engine)]
        return max(found, key=lambda s: s.last_used, default=None)

    async def load(self, name: str, engine: str | None, *, trusted: bool = False) -> Slot:
        """The slot of ``name`` on ``engine``, loading it if needed. ``trusted``: the
        name came from the command line (a path is fine); from a request, only catalog names."""
        slot = self._loaded(name, engine)
        if slot is not None:
            return slot
        async with self._load_lock:
            slot = self._loaded(name, engine)
            if slot is not None:
                return slot
            known = self._loaded(name, None)  # loaded on another engine: the same model
            if known is not None:
                name, trusted = known.loaded.ref, True
            if not trusted and _path_like(name):
                raise ModelNotFound(f"no model named '{name}'", hint="a request names a model from GET /v1/models, not a path")
            from anechat.catalog import resolve_model

            try:
                entry = await asyncio.to_thread(resolve_model, name)
            except ModelNotFound as exc:
                raise self._with_loaded_names(name, exc) from None
            engine = engine or (self.default_engine if self.default_engine in entry.engines or not entry.engines else entry.engines[0])
            existing = self.slots.get((entry.name, engine))
            if existing is not None:
                existing.aliases.add(name)
                return existing
            await self._make_room(entry.size_bytes or 0)
            controller = ChatController()
            loaded = await self.thread.run(controller.load, name if trusted else entry.name, engine)
            assert controller.engine is not None and controller.session is not None
            sessions = SessionLRU(controller.engine, controller.session, self.sessions_per_model)
            slot = Slot(controller, loaded, {name, loaded.name, loaded.ref, str(loaded.path)}, sessions)
            self.slots[slot.key] = slot
            return slot

    def _with_loaded_names(self, name: str, error: ModelNotFound) -> ModelNotFound:
        """The catalog's error, or one suggesting a loaded model's name close to ``name``."""
        loaded = sorted({s.loaded.name for s in self.slots.values()})
        close = difflib.get_close_matches(name.lower(), loaded, n=2, cutoff=0.6)
        if not close:
            return error
        return ModelNotFound(f"no model named '{name}'", hint=f"did you mean {' or '.join(close)}? (GET /v1/models lists them)")

    async def _make_room(self, size_bytes: int) -> None:
        """Unload idle models, least recently used first, until ``size_bytes`` fits beside the rest."""
        needed = size_bytes * MEMORY_FACTOR + MEMORY_FLOOR
        while self.slots and memory_available() < needed:
            idle = [s for s in self.slots.values() if s.idle]
            if not idle:
                return  # every model is busy: try the load anyway (it fails with out of memory if it must)
            victim = min(idle, key=lambda s: s.last_used)
            del self.slots[victim.key]
            await self.thread.run(victim.controller.unload)

    # -- one generation at a time ---------------------------------------------------
    @contextlib.asynccontextmanager
    async def turn(self, name: str, engine: str | None) -> AsyncIterator[Slot]:
        """Hold ``name``'s model for one generation (waiting in its queue)."""
        slot = await self.load(name, engine)
        if slot.lock.locked() and slot.waiting >= self.max_queue:
            retry = max(1, math.ceil(slot.turn_s * (slot.waiting + 1)))
            raise ApiError(
                "busy",
                f"model {slot.loaded.name} is busy ({slot.waiting} requests waiting)",
                hint=f"retry in about {retry} s",
                retry_after=retry,
            )
        slot.waiting += 1
        try:
            await slot.lock.acquire()
        finally:
            slot.waiting -= 1
        started = time.monotonic()
        try:
            yield slot
        finally:
            slot.last_used = time.monotonic()
            slot.turn_s = 0.7 * slot.turn_s + 0.3 * (slot.last_used - started)
            slot.lock.release()

    def unload_all(self) -> None:
        """Unload every model (engine thread only: the server's last job)."""
        for slot in self.slots.values():
            slot.controller.unload()
        self.slots.clear()
