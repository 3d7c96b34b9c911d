"""The endpoints: ``/v1/chat/completions``, ``/v1/completions``, ``/v1/models``, ``/health``.

A generation request is parsed, waits its turn on its model (:mod:`anechat.api.pool`),
runs on the engine thread (:mod:`anechat.api.generation`) and is answered whole or as
server-sent events. Errors are raised as :class:`AnechatError` and shaped once, at the
server's edge (:mod:`anechat.api.server`). ``request["log"]`` collects what the
request log line shows.
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web

from anechat.api.errors import ApiError, error_body
from anechat.api.generation import ClientGone, Generation
from anechat.api.pool import ModelPool
from anechat.api.requests import GenerationRequest, parse_request
from anechat.api.responses import Answer
from anechat.engines.base import GenerationStats, TextDelta
from anechat.engines.errors import AnechatError

#: the preview of a request's text in the log, with --log-text
LOG_TEXT_CHARS = 200


class Handlers:
    def __init__(self, pool: ModelPool, *, log_text: bool = False) -> None:
        self.pool = pool
        self.log_text = log_text

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/v1/chat/completions", self.chat_completions),
            web.post("/v1/completions", self.completions),
            web.get("/v1/models", self.models),
            web.get("/health", self.health),
        ]

    # -- generation ---------------------------------------------------------------
    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, parse_request(await _json(request), chat=True))

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, parse_request(await _json(request), chat=False))

    async def _generate(self, request: web.Request, req: GenerationRequest) -> web.StreamResponse:
        log = request["log"]
        log["model"] = req.model + (f"@{req.engine}" if req.engine else "")
        if self.log_text:
            text = req.messages[-1].content if req.messages else (req.prompt or f"{len(req.prompt_ids)} token ids")
            log["text"] = json.dumps(text[:LOG_TEXT_CHARS], ensure_ascii=False)
        waited = time.perf_counter()
        async with self.pool.turn(req.model, req.engine) as slot:
            answer = Answer(req, slot.loaded, time.perf_counter() - waited)
            transport = request.transport
            generation = Generation(self.pool.thread, slot.sessions, req, lambda: transport is None or transport.is_closing())
            try:
                await generation.start()
                if req.stream:
                    return await _stream(request, answer, generation)
                return await _whole(answer, generation)
            except ClientGone:
                log["finish"] = "client gone"
                return web.Response(status=499)
            finally:
                unread = await generation.close()
                if answer.stats is None:
                    answer.stats = unread
                _log_answer(log, answer, self.log_text)

    # -- catalog and health -------------------------------------------------------
    async def models(self, request: web.Request) -> web.Response:
        from anechat.catalog import list_models

        entries = await asyncio.to_thread(list_models)
        loaded = {slot.loaded.name: slot for slot in self.pool.slots.values()}
        data, seen = [], set()
        for entry in entries:
            if entry.runnable or entry.needs_conversion:
                seen.add(entry.name)
                data.append(_model_card(entry.name, list(entry.engines), entry.format, entry.name in loaded))
        for name, slot in loaded.items():
            if name not in seen:
                data.append(_model_card(name, [slot.loaded.engine], slot.loaded.format, True))
        return web.json_response({"object": "list", "data": data})

    async def health(self, request: web.Request) -> web.Response:
        models = [
            {"model": s.loaded.name, "engine": s.loaded.engine, "runtime": s.loaded.runtime, "busy": s.lock.locked(), "waiting": s.waiting, "sessions": len(s.sessions.sessions)}
            for s in self.pool.slots.values()
        ]
        return web.json_response({"status": "ok", "models": models})


def _model_card(name: str, engines: list[str], fmt: str, loaded: bool) -> dict:
    return {
        "id": name,
        "object": "model",
        "created": 0,
        "owned_by": "local",
        "x_anechat": {"engines": engines, "format": fmt, "loaded": loaded, "ids": [f"{name}@{e}" for e in engines]},
    }


async def _json(request: web.Request) -> object:
    raw = await request.read()  # over the size cap: aiohttp raises 413
    request["log"]["in"] = len(raw)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError("invalid_request", f"the request body is not valid JSON ({exc})", hint="send a JSON object") from None


async def _whole(answer: Answer, generation: Generation) -> web.Response:
    async for event in generation.events():
        if isinstance(event, TextDelta):
            answer.add(event)
            if answer.stopped:
                generation.cancel.cancel()
        elif isinstance(event, GenerationStats):
            answer.finish(event)
            if event.error:
                raise AnechatError(event.error)
    return web.json_response(answer.body())


async def _stream(request: web.Request, answer: Answer, generation: Generation) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await response.prepare(request)
    log = request["log"]

    async def send(data: dict | str) -> None:
        line = f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n".encode()
        log["out"] = log.get("out", 0) + len(line)
        await response.write(line)

    try:
        if answer.request.is_chat:
            await send(answer.chunk(first=True))
        async for event in generation.events():
            if isinstance(event, TextDelta):
                piece = answer.add(event)
                if piece:
                    await send(answer.chunk(piece))
                if answer.stopped:
                    generation.cancel.cancel()
            elif isinstance(event, GenerationStats):
                tail = answer.finish(event)
                if tail:
                    await send(answer.chunk(tail))
                if event.error:
                    await send(error_body(AnechatError(event.error)))
                else:
                    await send(answer.chunk(last=True))
                    if answer.request.include_usage:
                        await send(answer.usage_chunk())
        await send("[DONE]")
        await response.write_eof()
    except (ClientGone, ConnectionError):
        generation.cancel.cancel()
        log["finish"] = "client gone"
    return response


def _log_answer(log: dict, answer: Answer, log_text: bool) -> None:
    stats = answer.stats
    log["queued"] = f"{answer.queued_s:.2f}s"
    if stats is not None:
        log.setdefault("finish", answer.finish_reason if stats.finish_reason != "cancelled" or answer.stopped else "cancelled")
        log["tokens"] = f"{stats.cached_tokens}+{stats.prompt_tokens}->{stats.generation_tokens}"
        log["ttft"] = f"{stats.ttft_s:.3f}s"
        log["decode"] = f"{stats.decode_tps:.1f}tok/s"
    if log_text and answer.text:
        log["answer"] = json.dumps(answer.text[:LOG_TEXT_CHARS], ensure_ascii=False)
