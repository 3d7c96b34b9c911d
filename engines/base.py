"""The engine contract: what every backend (mlx, coreml) offers the rest of anechat.

A backend is an :class:`Engine`: ``available()`` says whether it runs here (and why
not), ``load(path)`` returns a :class:`Session` bound to one model, ``unload()`` frees
it, ``memory()`` reports a :class:`MemoryReport`. ``Session.generate(messages, params,
cancel)`` streams :class:`TextDelta` events and ends with exactly one
:class:`GenerationStats`; ``generate_ids`` does the same from token ids (benchmarks).

The chat template, the reuse of the KV cache across turns (longest common token
prefix, keeping the generated token ids of earlier answers) and streaming
detokenization are not done per backend: :class:`anechat.engines.session.TokenSession`
does them once, and a backend implements only its primitives there (``_stream`` the
new tokens, ``_cache_length``, ``_trim_cache``).

A server that answers several conversations on one model asks the engine for more
sessions over the same loaded weights, each with its own KV cache
(:meth:`Engine.open_session`; None from an engine whose model holds one state), and
sends each prompt to the session whose cache reuses most of it
(:meth:`Session.reusable_tokens`).
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Iterator, Literal, Sequence, Union

from anechat.engines.errors import InvalidParameter

FinishReason = Literal["stop", "length", "cancelled", "error"]
ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str

    @classmethod
    def coerce(cls, item: "Message | dict") -> "Message":
        if isinstance(item, Message):
            return item
        return cls(role=str(item["role"]), content=str(item["content"]))


@dataclass(frozen=True)
class SamplingParams:
    """Sampling parameters. ``temperature == 0`` means greedy decoding."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    repetition_context: int = 64
    seed: int | None = None
    max_tokens: int = 512

    def validate(self) -> "SamplingParams":
        def bad(name: str, value: object, rule: str) -> InvalidParameter:
            return InvalidParameter(f"{name}={value} is invalid: {rule}")

        if not _finite(self.temperature) or self.temperature < 0:
            raise bad("temperature", self.temperature, "use a number >= 0 (0 = greedy)")
        if not _finite(self.top_p) or not 0 < self.top_p <= 1:
            raise bad("top_p", self.top_p, "use a number in (0, 1]")
        if self.top_k < 0:
            raise bad("top_k", self.top_k, "use an integer >= 0 (0 = off)")
        if not _finite(self.min_p) or not 0 <= self.min_p < 1:
            raise bad("min_p", self.min_p, "use a number in [0, 1)")
        if not _finite(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise bad("repetition_penalty", self.repetition_penalty, "use a number > 0 (1 = off)")
        if self.repetition_context < 1:
            raise bad("repetition_context", self.repetition_context, "use an integer >= 1")
        if self.max_tokens < 1:
            raise bad("max_tokens", self.max_tokens, "use an integer >= 1")
        if self.seed is not None and self.seed < 0:
            raise bad("seed", self.seed, "use an integer >= 0")
        return self

    def with_(self, **changes: object) -> "SamplingParams":
        return replace(self, **changes)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def _finite(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x)


@dataclass(frozen=True)
class Figures:
    """The engine's own figures of a turn so far, on its own clock (as mlx-lm's
    ``GenerationResponse`` carries them on every token).

    ``ttft_s`` runs from the call to ``generate`` to the first sampled token;
    ``prefill_tps`` is the prompt tokens prefilled this turn over the prefill time;
    ``decode_tps`` is (tokens after the first) over the time since the first.
    A :class:`TextDelta` carries them as they stand at that token; the final
    :class:`GenerationStats` holds the same figures at the end (``stats.figures``).
    The UI shows these and never computes its own.
    """

    prompt_tokens: int = 0  # tokens prefilled this turn (after reusing the cache)
    cached_tokens: int = 0  # prompt tokens reused from the KV cache
    generation_tokens: int = 0  # tokens sampled so far
    ttft_s: float = 0.0
    prefill_tps: float = 0.0
    decode_tps: float = 0.0


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer. ``text`` may be empty while a UTF-8 character is incomplete."""

    text: str
    token_ids: tuple[int, ...]
    figures: Figures = Figures()  # the engine's figures once this token was sampled


@dataclass(frozen=True)
class GenerationStats:
    """The final record of a turn. Figures come from the engine's own counters."""

    prompt_tokens: int  # tokens prefilled this turn (after reusing the cache)
    generation_tokens: int
    ttft_s: float
    prefill_tps: float
    decode_tps: float
    peak_memory_bytes: int
    finish_reason: FinishReason
    cached_tokens: int = 0  # prompt tokens reused from the KV cache
    context_tokens: int = 0  # tokens held by the cache after the turn
    #: prompt tokens left out because the conversation did not fit the context (a context
    #: shift keeps its start and its most recent tokens); 0 when all of it was used
    dropped_tokens: int = 0
    text: str = ""
    error: str | None = None

    @classmethod
    def from_figures(cls, figures: Figures, **rest: object) -> "GenerationStats":
        return cls(
            prompt_tokens=figures.prompt_tokens,
            generation_tokens=figures.generation_tokens,
            ttft_s=figures.ttft_s,
            prefill_tps=figures.prefill_tps,
            decode_tps=figures.decode_tps,
            cached_tokens=figures.cached_tokens,
            **rest,  # type: ignore[arg-type]
        )

    @property
    def figures(self) -> Figures:
        """The final figures, in the shape the deltas carried them."""
        return Figures(
            prompt_tokens=self.prompt_tokens,
            cached_tokens=self.cached_tokens,
            generation_tokens=self.generation_tokens,
            ttft_s=self.ttft_s,
            prefill_tps=self.prefill_tps,
            decode_tps=self.decode_tps,
        )

    def as_dict(self) -> dict:
        return asdict(self)


Event = Union[TextDelta, GenerationStats]


class CancelToken:
    """Thread-safe flag a caller sets to stop a generation at the next token."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def reset(self) -> None:
        self._event.clear()


@dataclass(frozen=True)
class MemoryReport:
    """What the engine knows about its own memory. Unknown figures are None."""

    model_bytes: int | None = None  # weights held in memory
    active_bytes: int | None = None  # MLX active memory
    peak_bytes: int | None = None
    cache_bytes: int | None = None  # MLX buffer cache / KV cache
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Availability:
    ok: bool
    reason: str  # why not, or what runs (e.g. "MLX on CPU (OpenBLAS)")
    runtime: str = ""  # short label shown in the UI, e.g. "MIL on CPU"


@dataclass(frozen=True)
class ModelInfo:
    name: str
    path: Path
    architecture: str = ""
    context_length: int = 0
    vocab_size: int = 0
    parameters: int | None = None
    quantization: str = ""  # e.g. "4-bit g64", "LUT6", "float32"
    extra: dict = field(default_factory=dict)


class Session(ABC):
    """One loaded model, ready to chat. Not thread-safe: one generation at a time."""

    info: ModelInfo

    @abstractmethod
    def generate(
        self,
        messages: Sequence[Message | dict],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
    ) -> Iterator[Event]:
        """Stream the assistant's answer to ``messages`` (template applied here)."""

    @abstractmethod
    def generate_ids(
        self,
        prompt_ids: Sequence[int],
        params: SamplingParams | None = None,
        cancel: CancelToken | None = None,
        *,
        ignore_eos: bool = False,
    ) -> Iterator[Event]:
        """Stream from raw prompt token ids (benchmarks). Uses the same cache reuse."""

    @abstractmethod
    def count_tokens(self, messages: Sequence[Message | dict]) -> int:
        """Tokens the conversation takes once templated (with the generation prompt)."""

    @property
    @abstractmethod
    def cached_tokens(self) -> int:
        """Tokens currently held in the KV cache / state."""

    @abstractmethod
    def reset(self) -> None:
        """Forget the cache (the next turn prefills everything)."""

    def reusable_tokens(self, prompt: Sequence[Message | dict] | Sequence[int]) -> int:
        """How many leading tokens of ``prompt`` (a conversation, or token ids) the KV
        cache already holds, so the next turn on it would not prefill them again.

        0 from a session that cannot tell. Call it on the thread that generates.
        """
        return 0

    def close(self) -> None:  # pragma: no cover - default no-op
        """Release the model's memory."""


class Engine(ABC):
    """A backend. ``name`` is what the CLI calls it: ``mlx`` or ``coreml``."""

    name: str = ""
    label: str = ""

    @classmethod
    @abstractmethod
    def available(cls) -> Availability:
        """Whether this backend can run here, and if not, why (one actionable line)."""

    @abstractmethod
    def load(self, path: Path | str, *, context_length: int | None = None) -> Session:
        """Load a model folder. Raises ModelNotFound / ModelFormatError / OutOfMemory."""

    @abstractmethod
    def unload(self) -> None:
        """Drop the loaded model, if any."""

    #: the last memory snapshot; replaced whole, never changed in place
    _memory_snapshot: MemoryReport = MemoryReport()

    def memory(self) -> MemoryReport:
        """The engine's own view of its memory: a snapshot, safe to read from any thread.

        The engine takes it on its own thread (the one that loads and generates) —
        at load and unload, after the first token and about twice a second while
        it decodes, and at the end of every turn — through :meth:`snapshot_memory`.
        Reading it never touches the backend, so a gauges worker may call this
        while a turn runs on the engine thread.
        """
        return self._memory_snapshot

    def snapshot_memory(self) -> None:
        """Measure now and publish the result to :meth:`memory`. Engine thread only."""
        self._memory_snapshot = self.measure_memory()

    @abstractmethod
    def measure_memory(self) -> MemoryReport:
        """Ask the backend for its memory figures now. Engine thread only."""

    @property
    @abstractmethod
    def session(self) -> Session | None:
        """The loaded session, if any."""

    def open_session(self) -> Session | None:
        """A further session over the loaded model: the same weights, its own KV cache
        (empty), so several conversations keep their caches side by side.

        It lives until :meth:`unload` (or its own ``close()``), and generates on the
        same thread as the others, one generation at a time across all of them.
        Raises ``NotLoaded`` when no model is loaded. Returns None from an engine whose
        loaded model holds a single state (Core ML: the model's state is its cache);
        callers then share :attr:`session`.
        """
        return None
