"""One generation, run on the engine thread and streamed to the event loop.

The engine thread picks the model's session for the prompt (:mod:`anechat.api.sessions`),
iterates its events and hands each to an asyncio queue; the handler reads them. Errors the engine raises before the first token (context
overflow, a bad parameter) surface from :meth:`Generation.start`, before any
response header is sent, so they get their own status code. When the client goes
away (``is_gone``) or a stop string is found, the cancel token stops the engine at
the next token; :meth:`Generation.close` waits until the engine thread is done.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import Future
from typing import AsyncIterator, Callable

from anechat.chat.engine_thread import EngineThread
from anechat.api.requests import GenerationRequest
from anechat.api.sessions import Prompt, SessionLRU
from anechat.engines.base import CancelToken, Event, GenerationStats, Session
from anechat.engines.errors import AnechatError, InvalidParameter

_END = object()
#: how often a waiting handler checks that its client is still there
GONE_CHECK_S = 0.25


class ClientGone(Exception):
    """The client closed its connection; the generation was cancelled."""


def _prompt(session: Session, request: GenerationRequest) -> Prompt:
    """The request's prompt: its messages, or token ids (a plain prompt tokenized)."""
    if request.is_chat:
        return list(request.messages)
    if request.prompt is None:
        return list(request.prompt_ids)
    tokenizer = getattr(session, "tokenizer", None)
    if tokenizer is None:
        raise InvalidParameter("this engine takes chat messages only: use /v1/chat/completions")
    return tokenizer.encode(request.prompt)


def _events(sessions: SessionLRU, request: GenerationRequest, cancel: CancelToken):
    """The event stream for ``request`` on the session that reuses most of it (engine thread)."""
    prompt = _prompt(sessions.sessions[-1], request)
    session = sessions.pick(prompt)
    if request.is_chat:
        return session.generate(prompt, request.params, cancel)  # type: ignore[arg-type]
    return session.generate_ids(prompt, request.params, cancel)  # type: ignore[arg-type]


class Generation:
    def __init__(self, thread: EngineThread, sessions: SessionLRU, request: GenerationRequest, is_gone: Callable[[], bool]) -> None:
        self.thread = thread
        self.sessions = sessions
        self.request = request
        self.is_gone = is_gone
        self.cancel = CancelToken()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._job: Future | None = None
        self._first: object = None
        self._pending: asyncio.Future | None = None

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        def put(item: object) -> None:
            try:
                loop.call_soon_threadsafe(self._queue.put_nowait, item)
            except RuntimeError:  # the loop is closed: the server is stopping
                self.cancel.cancel()

        try:
            for event in _events(self.sessions, self.request, self.cancel):
                put(event)
        except BaseException as exc:  # handed to the handler, which answers with it
            put(exc)
        finally:
            put(_END)

    async def _next(self) -> object:
        """The next item from the engine thread, checking every GONE_CHECK_S that the client is there."""
        if self._first is not None:
            item, self._first = self._first, None
            return item
        if self._pending is None:
            self._pending = asyncio.ensure_future(self._queue.get())
        while True:
            done, _ = await asyncio.wait({self._pending}, timeout=GONE_CHECK_S)
            if done:
                task, self._pending = self._pending, None
                return task.result()
            if self.is_gone():
                self.cancel.cancel()
                raise ClientGone()

    async def start(self) -> None:
        """Start on the engine thread and wait for the first event (raises what the engine raised)."""
        self._job = self.thread.submit(self._run, asyncio.get_running_loop())
        first = await self._next()
        _raise_if_error(first)
        self._first = first

    async def events(self) -> AsyncIterator[Event]:
        while True:
            item = await self._next()
            if item is _END:
                return
            _raise_if_error(item)
            yield item  # type: ignore[misc]

    async def close(self) -> GenerationStats | None:
        """Stop the engine at its next token (if it still runs), wait until it has, and
        return the final stats the handler did not read (a client that went away)."""
        self.cancel.cancel()
        left: list[object] = []
        if self._pending is not None:
            if self._pending.done() and not self._pending.cancelled():
                left.append(self._pending.result())
            self._pending.cancel()
        if self._job is not None:
            await asyncio.wrap_future(self._job)
        await asyncio.sleep(0)  # the items the engine thread handed over land in the queue
        while not self._queue.empty():
            left.append(self._queue.get_nowait())
        return next((item for item in left if isinstance(item, GenerationStats)), None)


def _raise_if_error(item: object) -> None:
    if isinstance(item, AnechatError):
        raise item
    if isinstance(item, BaseException):
        raise AnechatError(f"the engine failed: {type(item).__name__}: {item}") from item
