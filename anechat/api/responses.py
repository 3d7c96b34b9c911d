"""OpenAI's response shapes: chat completions, text completions, their stream chunks,
``usage``, and anechat's figures in the ``x_anechat`` extension.

:class:`Answer` follows one generation: it passes each delta's text through the stop
strings, counts the tokens the client receives, and, at the end, gives the finish
reason, ``usage`` and the figures.
"""

from __future__ import annotations

import secrets
import time

from anechat.api.requests import GenerationRequest
from anechat.api.stops import StopMatcher
from anechat.chat.controller import LoadedModel
from anechat.engines.base import GenerationStats, TextDelta


class Answer:
    def __init__(self, request: GenerationRequest, loaded: LoadedModel, queued_s: float) -> None:
        self.request = request
        self.loaded = loaded
        self.queued_s = queued_s
        self.stops = StopMatcher(request.stop)
        self.id = ("chatcmpl-" if request.is_chat else "cmpl-") + secrets.token_hex(12)
        self.created = int(time.time())
        self.text = ""
        self.tokens = 0
        self.stats: GenerationStats | None = None

    @property
    def stopped(self) -> bool:
        """A stop string was found: the rest of the generation is not wanted."""
        return self.stops.hit

    def add(self, delta: TextDelta) -> str:
        """The text of ``delta`` the client gets now."""
        if self.stops.hit:
            return ""
        self.tokens += len(delta.token_ids)
        piece = self.stops.feed(delta.text)
        self.text += piece
        return piece

    def finish(self, stats: GenerationStats) -> str:
        """The last held-back text, once the final stats arrived."""
        self.stats = stats
        tail = self.stops.flush()
        self.text += tail
        return tail

    @property
    def finish_reason(self) -> str:
        if self.stops.hit:
            return "stop"
        reason = self.stats.finish_reason if self.stats else "stop"
        return "length" if reason == "length" else "stop"

    # -- figures ------------------------------------------------------------------
    def usage(self) -> dict:
        stats = self.stats
        prefilled = stats.prompt_tokens if stats else 0
        cached = stats.cached_tokens if stats else 0
        return {
            "prompt_tokens": prefilled + cached,
            "completion_tokens": self.tokens,
            "total_tokens": prefilled + cached + self.tokens,
            "prompt_tokens_details": {"cached_tokens": cached},
        }

    def figures(self) -> dict:
        stats = self.stats
        return {
            "model": self.loaded.name,
            "engine": self.loaded.engine,
            "runtime": self.loaded.runtime,
            "prompt_tokens_prefilled": stats.prompt_tokens if stats else 0,
            "cached_tokens": stats.cached_tokens if stats else 0,
            "ttft_s": stats.ttft_s if stats else 0.0,
            "prefill_tps": stats.prefill_tps if stats else 0.0,
            "decode_tps": stats.decode_tps if stats else 0.0,
            "peak_memory_bytes": stats.peak_memory_bytes if stats else 0,
            "queued_s": round(self.queued_s, 4),
            "engine_finish_reason": stats.finish_reason if stats else None,
        }

    # -- shapes -------------------------------------------------------------------
    def _head(self, chunk: bool) -> dict:
        if self.request.is_chat:
            kind = "chat.completion.chunk" if chunk else "chat.completion"
        else:
            kind = "text_completion"
        return {"id": self.id, "object": kind, "created": self.created, "model": self.request.model}

    def body(self) -> dict:
        """The whole (non-streamed) response."""
        if self.request.is_chat:
            choice = {"index": 0, "message": {"role": "assistant", "content": self.text}, "logprobs": None, "finish_reason": self.finish_reason}
        else:
            choice = {"index": 0, "text": self.text, "logprobs": None, "finish_reason": self.finish_reason}
        return {**self._head(False), "choices": [choice], "usage": self.usage(), "x_anechat": self.figures()}

    def chunk(self, text: str | None = None, *, first: bool = False, last: bool = False) -> dict:
        """A stream chunk: text, the role (first), or the finish reason and figures (last)."""
        finish = self.finish_reason if last else None
        if self.request.is_chat:
            delta: dict = {"role": "assistant", "content": ""} if first else ({} if text is None else {"content": text})
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        out = {**self._head(True), "choices": [choice]}
        if last:
            out["x_anechat"] = self.figures()
        return out

    def usage_chunk(self) -> dict:
        """The final chunk of ``stream_options.include_usage``: no choices, the usage."""
        return {**self._head(True), "choices": [], "usage": self.usage(), "x_anechat": self.figures()}
