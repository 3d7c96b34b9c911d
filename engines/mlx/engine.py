"""The MLX engine: mlx-lm models, anechat's tokenizer and turn driver.

Generation uses mlx-lm's ``generate_step`` (it overlaps the next forward pass
with handing out the current token through ``mx.async_eval``) on a KV cache the
session keeps across turns. ``generate_step`` feeds every token it yields into
the cache before yielding it, so when a turn ends the cache holds exactly the
prompt plus every generated token — which is what the next turn's prefix match
expects (:meth:`TokenSession._settle_cache` checks it).

:meth:`MLXEngine.open_session` gives more sessions over the same weights, each with
its own KV cache (a server keeping several conversations' caches); unloading the
model closes them all.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Iterator

from anechat.engines.base import Availability, Engine, MemoryReport, ModelInfo, SamplingParams, Session
from anechat.engines.errors import NotLoaded, OutOfMemory
from anechat.engines.session import TokenSession
from anechat.engines.tokenizer import ChatTokenizer
from anechat.engines.mlx.runtime import availability, generation_stream, is_out_of_memory, on_cpu


class MLXSession(TokenSession):
    """One MLX model and its KV cache."""

    #: tokens per prefill chunk (mlx-lm's default)
    prefill_step_size = 2048

    def __init__(self, model, info: ModelInfo, tokenizer: ChatTokenizer) -> None:
        super().__init__(info, tokenizer)
        self.model = model
        self._cache = self._new_cache()

    # -- KV cache -----------------------------------------------------------------
    def _new_cache(self) -> list:
        """One cache per layer, built here: never ``make_prompt_cache(max_kv_size=...)``.

        Models that describe their own cache (sliding-window layers, ...) get it
        from ``make_cache()``; the rest get a plain, trimmable ``KVCache`` per layer.
        """
        from mlx_lm.models.cache import KVCache

        if hasattr(self.model, "make_cache"):
            return list(self.model.make_cache())
        return [KVCache() for _ in self.model.layers]

    def _cache_length(self) -> int:
        for c in self._cache:
            offset = getattr(c, "offset", None)
            if isinstance(offset, int):
                return offset
        return 0

    def _trim_cache(self, keep: int) -> None:
        from mlx_lm.models.cache import can_trim_prompt_cache, trim_prompt_cache

        drop = self._cache_length() - keep
        if drop <= 0:
            return
        if keep > 0 and can_trim_prompt_cache(self._cache) and trim_prompt_cache(self._cache, drop) == drop:
            return
        # Not trimmable to that point (e.g. a full sliding window): start over;
        # _stream then prefills the whole context again.
        self._cache = self._new_cache()

    def cache_bytes(self) -> int:
        total = 0
        for c in self._cache:
            try:
                total += int(c.nbytes or 0)
            except (AttributeError, NotImplementedError):
                pass
        return total

    # -- memory -------------------------------------------------------------------
    def _reset_peak_memory(self) -> None:
        import mlx.core as mx

        mx.reset_peak_memory()

    def _peak_memory(self) -> int:
        import mlx.core as mx

        return int(mx.get_peak_memory())

    # -- generation ---------------------------------------------------------------
    def _stream(self, new_ids: list[int], context_ids: list[int], params: SamplingParams) -> Iterator[int]:
        import mlx.core as mx
        from mlx_lm.generate import generate_step
        from mlx_lm.sample_utils import make_sampler

        start = self._cache_length()
        if start > len(context_ids) - len(new_ids):  # never expected: the driver trims first
            self._trim_cache(len(context_ids) - len(new_ids))
            start = self._cache_length()
        if start == 0 and not all(_is_empty(c) for c in self._cache):
            self._cache = self._new_cache()  # a state that counts no tokens (e.g. SSM layers) cannot be reused
        prompt = context_ids[start:]  # == new_ids unless the cache had to start over
        stream = generation_stream()
        with mx.stream(stream):  # every MLX op of the engine runs on its own stream, in any thread
            if params.seed is not None:
                mx.random.seed(params.seed)
            prompt_array = mx.array(prompt, dtype=mx.uint32)
            processors = _penalty(params, context_ids[:start])
        sampler = make_sampler(temp=params.temperature, top_p=params.top_p, min_p=params.min_p, top_k=params.top_k)
        steps = generate_step(
            prompt_array,
            self.model,
            stream,
            max_tokens=-1,  # the driver decides when to stop
            sampler=sampler,
            logits_processors=processors,
            prompt_cache=self._cache,
            prefill_step_size=self.prefill_step_size,
        )
        try:
            for token, _logprobs in steps:
                yield token
        except (RuntimeError, MemoryError) as exc:
            if is_out_of_memory(exc):
                raise OutOfMemory(
                    f"MLX ran out of memory with {self._cache_length()} tokens in context ({exc})",
                    hint="start a new chat, load the model with a smaller context, or use a smaller / quantized model",
                ) from exc
            raise
        finally:
            steps.close()
            # The step computed ahead is still in flight: finish it so the cache is
            # concrete before another thread (or the interpreter's exit) touches it.
            try:
                with mx.stream(stream):
                    mx.eval([c.state for c in self._cache if not _is_empty(c)])
            except Exception:  # the turn's own error says what went wrong; start clean
                self._cache = self._new_cache()

    def close(self) -> None:
        self._cache = []
        self._cached_ids = []
        self.model = None


def _is_empty(cache) -> bool:
    try:
        return bool(cache.empty())
    except (AttributeError, NotImplementedError):
        return False


def _penalty(params: SamplingParams, earlier_ids: list[int]):
    """Repetition penalty over the whole context, not only this turn's new tokens.

    ``generate_step`` shows its logits processors only the tokens it was given
    (this turn's new prompt tokens) plus what it generated; the tokens already
    in the cache from earlier turns are prepended here.
    """
    if params.repetition_penalty == 1.0:
        return None
    import mlx.core as mx
    from mlx_lm.sample_utils import make_logits_processors

    processors = make_logits_processors(
        repetition_penalty=params.repetition_penalty, repetition_context_size=params.repetition_context
    )
    tail = earlier_ids[-params.repetition_context :]
    if not tail:
        return processors
    before = mx.array(tail, dtype=mx.uint32)

    def with_context(processor):
        return lambda tokens, logits: processor(mx.concatenate([before, tokens]), logits)

    return [with_context(p) for p in processors]


class MLXEngine(Engine):
    name = "mlx"
    label = "MLX"

    def __init__(self) -> None:
        self._session: MLXSession | None = None
        self._more: list[MLXSession] = []  # sessions from open_session(), over the same weights
        self._old_wired_limit: int | None = None

    @classmethod
    def available(cls) -> Availability:
        return availability()

    def load(self, path: Path | str, *, context_length: int | None = None) -> MLXSession:
        from anechat.engines.mlx.loader import load_folder

        self.unload()
        loaded = load_folder(path, context_length)
        self._session = MLXSession(loaded.model, loaded.info, loaded.tokenizer)
        self._session.memory_probe = self.snapshot_memory
        self._wire_memory()
        self.snapshot_memory()
        return self._session

    def open_session(self) -> MLXSession:
        """Another session over the loaded weights, with its own (empty) KV cache."""
        first = self._session
        if first is None or first.model is None:
            raise NotLoaded("no model is loaded", hint="load a model first")
        session = MLXSession(first.model, first.info, first.tokenizer)
        session.memory_probe = self.snapshot_memory
        self._more = [s for s in self._more if s.model is not None] + [session]
        return session

    def _sessions(self) -> list[MLXSession]:
        """The loaded session and the open further ones."""
        everything = ([self._session] if self._session is not None else []) + self._more
        return [s for s in everything if s.model is not None]

    def _wire_memory(self) -> None:
        """On Metal, keep the model wired in memory as mlx-lm's generate does (no-op on the CPU)."""
        if self._old_wired_limit is None and not on_cpu():
            from mlx_lm.utils import maybe_set_recommended_wired_limit

            self._old_wired_limit = maybe_set_recommended_wired_limit()

    def unload(self) -> None:
        if self._session is None:
            return
        for session in self._sessions():
            session.close()
        self._session = None
        self._more = []
        gc.collect()
        import mlx.core as mx

        mx.clear_cache()
        if self._old_wired_limit is not None:
            mx.synchronize(generation_stream())
            mx.set_wired_limit(self._old_wired_limit)
            self._old_wired_limit = None
        self.snapshot_memory()

    def measure_memory(self) -> MemoryReport:
        import mlx.core as mx

        session = self._session
        details: dict = {}
        model_bytes = None
        if session is not None and session.model is not None:
            model_bytes = int(session.info.extra["weights_bytes"])
            sessions = self._sessions()
            details["kv_cache_bytes"] = sum(s.cache_bytes() for s in sessions)
            details["kv_cache_tokens"] = sum(s.cached_tokens for s in sessions)
            details["sessions"] = len(sessions)
        return MemoryReport(
            model_bytes=model_bytes,
            active_bytes=int(mx.get_active_memory()),
            peak_bytes=int(mx.get_peak_memory()),
            cache_bytes=int(mx.get_cache_memory()),
            details=details,
        )

    @property
    def session(self) -> Session | None:
        return self._session
