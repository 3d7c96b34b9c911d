"""The turn driver every backend shares: templating, cache reuse, stop tokens, stats.

A backend subclasses :class:`TokenSession` and implements four primitives:

- ``_stream(new_ids, context_ids, params)``: prefill ``new_ids`` on top of what the
  cache holds, then yield sampled token ids one by one until closed;
- ``_cache_length()`` / ``_trim_cache(keep)``: how many tokens the KV cache holds,
  and cut it back to its first ``keep`` tokens;
- ``_reset_peak_memory()`` / ``_peak_memory()``: per-turn peak memory.

Everything else — the chat template, the longest-common-prefix reuse of the cache
across turns (earlier answers keep their generated token ids instead of being
re-tokenized), streaming detokenization, stop tokens, cancellation and the
figures (:class:`Figures` on every delta, the same figures in the final
:class:`GenerationStats`, one clock: :class:`_TurnClock`) — lives here once.

The engine's memory snapshot is refreshed from here, on the generating thread:
after the first token, every ``MEMORY_SNAPSHOT_EVERY_S`` while decoding, at the
end of each turn and on reset (``memory_probe``, set by the engine).
"""

from __future__ import annotations

import re
import time
from abc import abstractmethod
from collections import OrderedDict
from dataclasses import replace
from typing import Callable, Iterator, Sequence

from anechat.engines.base import (
    ROLES,
    CancelToken,
    Event,
    Figures,
    GenerationStats,
    Message,
    ModelInfo,
    SamplingParams,
    Session,
    TextDelta,
)
from anechat.engines.errors import ContextOverflow, EngineError, InvalidParameter, OutOfMemory
from anechat.engines.tokenizer import ChatTokenizer

_SENTINEL = "\x00anechat-answer-{}\x00"
_SENTINEL_RE = re.compile("\x00anechat-answer-(\\d+)\x00")
_MAX_REMEMBERED_ANSWERS = 64
#: while decoding, the engine's memory snapshot is refreshed at most this often
MEMORY_SNAPSHOT_EVERY_S = 0.5


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


class TokenSession(Session):
    """Base of the MLX and Core ML sessions: see the module docstring."""

    def __init__(self, info: ModelInfo, tokenizer: ChatTokenizer) -> None:
        self.info = info
        self.tokenizer = tokenizer
        self._cached_ids: list[int] = []  # exactly the tokens the KV cache holds
        self._answers: OrderedDict[str, tuple[int, ...]] = OrderedDict()
        self.last_stats: GenerationStats | None = None
        #: set by the engine: refreshes its memory snapshot (called on this, the engine's, thread)
        self.memory_probe: Callable[[], None] | None = None

    # -- backend primitives -------------------------------------------------------
    @abstractmethod
    def _stream(self, new_ids: list[int], context_ids: list[int], params: SamplingParams) -> Iterator[int]:
        """Prefill ``new_ids`` after the cache, then yield sampled ids until closed.

        ``context_ids`` is everything in context including ``new_ids`` (for the
        repetition penalty). The first ``next()`` returns once prefill is done.
        """

    @abstractmethod
    def _cache_length(self) -> int: ...

    @abstractmethod
    def _trim_cache(self, keep: int) -> None: ...

    def _reset_peak_memory(self) -> None:
        pass

    def _peak_memory(self) -> int:
        return 0

    # -- prompt building ----------------------------------------------------------
    def prompt_ids(self, messages: Sequence[Message | dict]) -> list[int]:
        """Token ids of the templated conversation, reusing earlier answers' ids."""
        msgs = [Message.coerce(m) for m in messages]
        if not msgs:
            raise InvalidParameter("the conversation is empty: send at least one message")
        for m in msgs:
            if m.role not in ROLES:
                raise InvalidParameter(f"unknown role {m.role!r}: use one of {', '.join(ROLES)}")
        spliced: list[tuple[int, ...]] = []
        rendered_msgs = []
        for m in msgs:
            content = m.content
            if m.role == "assistant" and content in self._answers:
                content = _SENTINEL.format(len(spliced))
                spliced.append(self._answers[m.content])
            rendered_msgs.append({"role": m.role, "content": content})
        text = self.tokenizer.render(rendered_msgs, add_generation_prompt=True)
        ids: list[int] = []
        pieces = _SENTINEL_RE.split(text)
        for i, piece in enumerate(pieces):
            if i % 2 == 0:
                if piece:
                    ids.extend(self.tokenizer.encode(piece))
            else:
                ids.extend(spliced[int(piece)])
        return ids

    def count_tokens(self, messages: Sequence[Message | dict]) -> int:
        return len(self.prompt_ids(messages))

    @property
    def cached_tokens(self) -> int:
        return len(self._cached_ids)

    def reusable_tokens(self, prompt: Sequence[Message | dict] | Sequence[int]) -> int:
        if not prompt:
            return 0
        ids = [int(t) for t in prompt] if isinstance(prompt[0], int) else self.prompt_ids(prompt)  # type: ignore[arg-type]
        return min(common_prefix_length(self._cached_ids, ids), len(ids) - 1)

    @property
    def context_length(self) -> int:
        return self.info.context_length

    def reset(self) -> None:
        self._trim_cache(0)
        self._cached_ids = []
        self._snapshot_memory()

    # -- generation ---------------------------------------------------------------
    def generate(
        self,
        messages: Sequence[Message | dict],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Event]:
        started = time.perf_counter()
        params = (params or SamplingParams()).validate()
        ids = self.prompt_ids(messages)
        return self._turn(ids, params, cancel, started=started, ignore_eos=False, remember=True)

    def generate_ids(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[Event]:
        started = time.perf_counter()
        params = (params or SamplingParams()).validate()
        ids = [int(t) for t in prompt_ids]
        if not ids:
            raise InvalidParameter("the prompt is empty: give at least one token")
        return self._turn(ids, params, cancel, started=started, ignore_eos=ignore_eos, remember=False)

    def _turn(
        self,
        ids: list[int],
        params: SamplingParams,
        cancel: CancelToken | None,
        *,
        started: float,
        ignore_eos: bool,
        remember: bool,
        dropped: int = 0,
    ) -> Iterator[Event]:
        """``dropped``: prompt tokens a backend's context shift left out of ``ids`` (reported in the stats)."""
        limit = self.context_length
        if limit and len(ids) >= limit:
            raise ContextOverflow(len(ids) + 1, limit)
        return self._run(ids, params, cancel, started, ignore_eos, remember, dropped)

    def _run(
        self,
        ids: list[int],
        params: SamplingParams,
        cancel: CancelToken | None,
        started: float,
        ignore_eos: bool,
        remember: bool,
        dropped: int = 0,
    ) -> Iterator[Event]:
        limit = self.context_length or 1 << 30
        keep = min(common_prefix_length(self._cached_ids, ids), len(ids) - 1)
        if keep < len(self._cached_ids) or keep < self._cache_length():
            self._trim_cache(keep)
        self._cached_ids = self._cached_ids[:keep]
        new_ids = ids[keep:]
        self._reset_peak_memory()
        detok = self.tokenizer.detokenizer()
        clock = _TurnClock(started, len(new_ids), keep)
        generated: list[int] = []
        finish = "length"
        error: str | None = None
        stream = self._stream(new_ids, ids, params)
        try:
            if cancel is not None and cancel.cancelled:
                finish = "cancelled"
            else:
                for token in stream:
                    generated.append(token)
                    n = len(generated)
                    figures = clock.token(n)
                    if clock.memory_due():
                        self._snapshot_memory()
                    if not ignore_eos and token in self.tokenizer.stop_ids:
                        finish = "stop"
                        break
                    yield TextDelta(text=detok.add(token), token_ids=(token,), figures=figures)
                    if n >= params.max_tokens or len(ids) + n >= limit:
                        finish = "length"
                        break
                    if cancel is not None and cancel.cancelled:
                        finish = "cancelled"
                        break
        except GeneratorExit:
            finish = "cancelled"
            raise
        except MemoryError as exc:
            finish, error = "error", str(OutOfMemory(f"out of memory while generating ({exc})", hint="use a smaller or quantized model"))
        except EngineError as exc:
            finish, error = "error", str(exc)
        except Exception as exc:  # a backend failure must not kill the caller's loop
            finish, error = "error", f"{type(exc).__name__}: {exc}"
        finally:
            stream.close()
            self._settle_cache(ids, generated, error is not None)
            self._snapshot_memory()
        figures = clock.figures
        tail = detok.flush()
        if tail:
            yield TextDelta(text=tail, token_ids=(), figures=figures)
        content_ids = generated[:-1] if finish == "stop" else generated
        if remember and error is None:
            self._remember(detok.text, content_ids)
        stats = GenerationStats.from_figures(
            figures,
            peak_memory_bytes=int(self._peak_memory()),
            finish_reason=finish,
            context_tokens=len(self._cached_ids),
            dropped_tokens=dropped,
            text=detok.text,
            error=error,
        )
        self.last_stats = stats
        yield stats

    def _snapshot_memory(self) -> None:
        """Hand the engine a chance to refresh its memory snapshot (never fails the turn)."""
        if self.memory_probe is not None:
            try:
                self.memory_probe()
            except Exception:
                pass

    def _settle_cache(self, ids: list[int], generated: list[int], failed: bool) -> None:
        """Make ``_cached_ids`` equal what the backend's cache really holds."""
        if failed:
            self.reset()
            return
        expected = ids + generated
        actual = self._cache_length()
        if actual > len(expected):  # a pipelined backend computed one token ahead
            self._trim_cache(len(expected))
            actual = len(expected)
        self._cached_ids = expected[:actual]

    def _remember(self, text: str, content_ids: list[int]) -> None:
        if not text:
            return
        self._answers[text] = tuple(content_ids)
        self._answers.move_to_end(text)
        while len(self._answers) > _MAX_REMEMBERED_ANSWERS:
            self._answers.popitem(last=False)


class _TurnClock:
    """The one place a turn's figures are computed, on the engine's clock.

    ``token(n)`` is called as the n-th token is sampled and returns the figures
    as they stand then; :attr:`figures` are the last ones (the final stats).
    """

    def __init__(self, started: float, prompt_tokens: int, cached_tokens: int) -> None:
        self.started = started
        self.prefill_start = time.perf_counter()
        self.figures = Figures(prompt_tokens=prompt_tokens, cached_tokens=cached_tokens)
        self._first: float | None = None
        self._memory_at = 0.0

    def token(self, n: int) -> Figures:
        now = time.perf_counter()
        if self._first is None:
            self._first = now
            prefill_s = max(now - self.prefill_start, 1e-9)
            self.figures = replace(
                self.figures, ttft_s=now - self.started, prefill_tps=self.figures.prompt_tokens / prefill_s
            )
        decode_tps = (n - 1) / (now - self._first) if n > 1 and now > self._first else 0.0
        self.figures = replace(self.figures, generation_tokens=n, decode_tps=decode_tps)
        return self.figures

    def memory_due(self) -> bool:
        """True after the first token, then at most every MEMORY_SNAPSHOT_EVERY_S."""
        now = time.perf_counter()
        if now - self._memory_at < MEMORY_SNAPSHOT_EVERY_S:
            return False
        self._memory_at = now
        return True
