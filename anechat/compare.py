"""The comparison harness behind `anechat compare` and the app's compare screen (no UI here).

A *contestant* is one model on one engine. :func:`run_compare` loads each
contestant, lets it answer the same prompt, streams every event to a callback
tagged with the contestant's index, and returns a :class:`CompareReport`: the
figures of each answer and a summary of each contestant against the first one
(the *baseline*).

Two ways to run:

- **sequential** (default, fair): one contestant at a time, each loaded, warmed
  up, timed and unloaded before the next starts, so no two runs share the
  machine and only one model is in memory at a time;
- **concurrent** (``concurrent=True``): every contestant in its own thread; all
  load first, then start answering together (on a Mac the Neural Engine and the
  GPU are separate units, which this shows). Figures then include the contention.
  MLX's peak-memory counter is process-wide, so concurrent MLX contestants see
  each other's memory in their peaks.

Each contestant's engine is touched by exactly one thread (its loader is its
generator), as engines are not thread-safe.

Before its timed answer a contestant is *warmed up* with a two-token generation
(first-call kernel compilation, Core ML's on-device specialisation), then its
cache is reset, so TTFT measures prefill and not one-off start-up work.

**Token agreement.** Under greedy decoding the same model on two correct
engines should produce the same token ids; quantization or numerical drift makes
answers diverge at some position. For a contestant's ids ``b`` against the
baseline's ids ``a``, with ``n = max(len(a), len(b))``:

- ``prefix`` — the share of the ``n`` positions before the first divergence:
  ``common_prefix_length(a, b) / n``;
- ``overall`` — the share of the ``n`` positions ``i`` where both answers have a
  token and ``a[i] == b[i]`` (positions past the shorter answer count as
  disagreements, so a truncated answer cannot score 100%).

Both are 1.0 for identical answers (and for two empty ones). Agreement is only
computed between contestants whose tokenizers match (same vocabulary size and
same ids for a probe text); otherwise token ids mean different things and it is
``None``. With sampling (temperature > 0) the figures are still computed but say
little; :attr:`CompareReport.greedy` tells which case it was.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence, Union

from .chat import ChatController, LoadedModel
from .engines.base import CancelToken, GenerationStats, SamplingParams, Session, TextDelta
from .engines.errors import EngineError, InvalidParameter
from .engines.session import common_prefix_length

PhaseName = Literal["waiting", "loading", "warming", "ready", "generating", "done", "failed", "cancelled"]
_TOKENIZER_PROBE = "The quick brown fox: 12345, café, 東京 🙂\n<|im_end|>"


@dataclass(frozen=True)
class Contestant:
    """One model (catalog name or folder path; None = the default model) on one engine."""

    model: str | None
    engine: str

    @property
    def model_label(self) -> str:
        if not self.model:
            return "default model"
        path = Path(self.model)
        return path.name if len(path.parts) > 1 else self.model

    @property
    def label(self) -> str:
        return f"{self.model_label} · {self.engine}"


def pair_contestants(models: Sequence[str | None], engines: Sequence[str]) -> list[Contestant]:
    """Every model on every engine, models first: ``-m A -m B -e coreml -e mlx`` gives
    A·coreml, A·mlx, B·coreml, B·mlx. No model means the default model; an engine
    must be given (the CLI fills in the configured one). Repeats are kept (the same
    contestant twice shows the run-to-run noise)."""
    if not engines:
        raise InvalidParameter("name at least one engine (-e mlx or -e coreml)")
    models = list(models) or [None]
    return [Contestant(model, engine) for model in models for engine in engines]


@dataclass(frozen=True)
class Phase:
    """A contestant's progress outside the token stream."""

    phase: PhaseName
    detail: str = ""
    loaded: LoadedModel | None = None


CompareEvent = Union[Phase, TextDelta, GenerationStats]
OnEvent = Callable[[int, CompareEvent], None]


@dataclass
class ContestantResult:
    contestant: Contestant
    loaded: LoadedModel | None = None
    stats: GenerationStats | None = None
    token_ids: list[int] = field(default_factory=list)
    load_s: float | None = None
    error: str | None = None
    tokenizer_key: tuple | None = None

    @property
    def text(self) -> str:
        return self.stats.text if self.stats is not None else ""

    @property
    def ok(self) -> bool:
        return self.error is None and self.stats is not None and self.stats.finish_reason in ("stop", "length")


@dataclass(frozen=True)
class Agreement:
    """Token agreement of an answer with the baseline's (see the module docstring)."""

    prefix: float
    overall: float
    positions: int  # n = the longer answer's length
    first_divergence: int | None  # first differing position; None when the answers are identical


def token_agreement(a: Sequence[int], b: Sequence[int]) -> Agreement:
    n = max(len(a), len(b))
    if n == 0:
        return Agreement(1.0, 1.0, 0, None)
    common = common_prefix_length(a, b)
    same = sum(1 for x, y in zip(a, b) if x == y)
    return Agreement(common / n, same / n, n, None if common == n else common)


def ratio(value: float | int | None, base: float | int | None) -> float | None:
    """``value / base`` when both are known and positive, else None (0 means "not measured")."""
    if value is None or base is None or value <= 0 or base <= 0:
        return None
    return float(value) / float(base)


@dataclass(frozen=True)
class SummaryRow:
    """One contestant's figures, and each as a ratio to the baseline's (the first contestant)."""

    label: str
    decode_tps: float | None
    prefill_tps: float | None
    ttft_s: float | None
    peak_memory_bytes: int | None
    generation_tokens: int
    decode_ratio: float | None
    prefill_ratio: float | None
    ttft_ratio: float | None
    memory_ratio: float | None
    agreement: Agreement | None  # None for the baseline itself, failures and mismatched tokenizers
    error: str | None = None


@dataclass
class CompareReport:
    prompt: str
    params: SamplingParams
    concurrent: bool
    results: list[ContestantResult]
    wall_s: float = 0.0

    @property
    def greedy(self) -> bool:
        return self.params.greedy

    def summary(self) -> list[SummaryRow]:
        return summarize(self.results)

    def as_dict(self) -> dict:
        rows = self.summary()
        return {
            "prompt": self.prompt,
            "params": asdict(self.params),
            "mode": "concurrent" if self.concurrent else "sequential",
            "greedy": self.greedy,
            "wall_s": self.wall_s,
            "contestants": [
                {
                    "model": r.contestant.model,
                    "engine": r.contestant.engine,
                    "label": r.contestant.label,
                    "runtime": r.loaded.runtime if r.loaded else None,
                    "model_path": str(r.loaded.path) if r.loaded else None,
                    "load_s": r.load_s,
                    "stats": r.stats.as_dict() if r.stats else None,
                    "token_ids": list(r.token_ids),
                    "error": r.error,
                    "summary": {k: v for k, v in asdict(row).items() if k not in ("label", "error")},
                }
                for r, row in zip(self.results, rows)
            ],
        }


def summarize(results: Sequence[ContestantResult]) -> list[SummaryRow]:
    if not results:
        return []
    base = results[0]
    bs = base.stats if base.ok else None
    rows = []
    for i, r in enumerate(results):
        s = r.stats if r.ok else None
        agreement = None
        if i > 0 and s is not None and bs is not None and _same_tokenizer(base, r):
            agreement = token_agreement(base.token_ids, r.token_ids)
        rows.append(
            SummaryRow(
                label=r.contestant.label,
                decode_tps=s.decode_tps if s else None,
                prefill_tps=s.prefill_tps if s else None,
                ttft_s=s.ttft_s if s else None,
                peak_memory_bytes=(s.peak_memory_bytes or None) if s else None,
                generation_tokens=s.generation_tokens if s else 0,
                decode_ratio=ratio(s.decode_tps, bs.decode_tps) if s and bs else None,
                prefill_ratio=ratio(s.prefill_tps, bs.prefill_tps) if s and bs else None,
                ttft_ratio=ratio(s.ttft_s, bs.ttft_s) if s and bs else None,
                memory_ratio=ratio(s.peak_memory_bytes, bs.peak_memory_bytes) if s and bs else None,
                agreement=agreement,
                error=r.error or (None if r.ok or r.stats is None else r.stats.finish_reason),
            )
        )
    return rows


def _same_tokenizer(a: ContestantResult, b: ContestantResult) -> bool:
    return a.tokenizer_key is None or b.tokenizer_key is None or a.tokenizer_key == b.tokenizer_key


def tokenizer_key(session: Session) -> tuple | None:
    """(vocabulary size, ids of a probe text): equal for tokenizers that give ids the same meaning."""
    tok = getattr(session, "tokenizer", None)
    if tok is None:
        return None
    try:
        return (int(tok.vocab_size), tuple(tok.encode(_TOKENIZER_PROBE)))
    except Exception:
        return None


def warm_up(session: Session) -> None:
    """A two-token generation from a few token ids, then an empty cache."""
    vocab = max(int(getattr(session.info, "vocab_size", 0) or 0), 16)
    ids = [(7 * i + 3) % vocab for i in range(8)]
    for _ in session.generate_ids(ids, SamplingParams(max_tokens=2), ignore_eos=True):
        pass
    session.reset()


def release_thread_streams() -> None:
    """MLX keeps per-thread streams and may abort at exit if a finished thread still holds them."""
    mx = sys.modules.get("mlx.core")
    clear = getattr(mx, "clear_streams", None)
    if clear is not None:
        try:
            clear()
        except Exception:
            pass


def run_compare(
    contestants: Sequence[Contestant],
    prompt: str,
    *,
    params: SamplingParams | None = None,
    system_prompt: str = "",
    concurrent: bool = False,
    on_event: OnEvent | None = None,
    cancel: CancelToken | None = None,
    warmup: bool = True,
) -> CompareReport:
    """Blocking: every contestant answers ``prompt``; see the module docstring."""
    if not contestants:
        raise InvalidParameter("nothing to compare: give at least one model and engine")
    if not prompt.strip():
        raise InvalidParameter("the prompt is empty: type something to compare")
    params = (params or SamplingParams()).validate()
    emit: OnEvent = on_event or (lambda _i, _e: None)
    cancel = cancel or CancelToken()
    results = [ContestantResult(c) for c in contestants]
    for i in range(len(results)):
        emit(i, Phase("waiting"))
    started = time.perf_counter()
    job = _Job(prompt, params, system_prompt, emit, cancel, warmup)
    if concurrent and len(results) > 1:
        gate = threading.Barrier(len(results))
        threads = [
            threading.Thread(target=job.run_in_thread, args=(i, r, gate), name=f"anechat-compare-{i}", daemon=True)
            for i, r in enumerate(results)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    else:
        for i, r in enumerate(results):
            job.run(i, r, None)
    return CompareReport(prompt, params, concurrent and len(results) > 1, results, time.perf_counter() - started)


@dataclass
class _Job:
    prompt: str
    params: SamplingParams
    system_prompt: str
    emit: OnEvent
    cancel: CancelToken
    warmup: bool

    def run_in_thread(self, index: int, result: ContestantResult, gate: threading.Barrier) -> None:
        try:
            self.run(index, result, gate)
        finally:
            release_thread_streams()

    def run(self, index: int, result: ContestantResult, gate: threading.Barrier | None) -> None:
        controller = ChatController(system_prompt=self.system_prompt, params=self.params)
        at_gate = False
        try:
            if self.cancel.cancelled:
                raise _Cancelled
            self._prepare(index, result, controller)
            at_gate = True
            self._wait(gate)
            if self.cancel.cancelled:
                raise _Cancelled
            self._answer(index, result, controller)
        except _Cancelled:
            result.error = "cancelled"
            self.emit(index, Phase("cancelled"))
        except EngineError as exc:
            result.error = str(exc)
            self.emit(index, Phase("failed", str(exc)))
        except Exception as exc:  # one broken contestant must not stop the others
            result.error = f"{type(exc).__name__}: {exc}"
            self.emit(index, Phase("failed", result.error))
        finally:
            if not at_gate:
                self._wait(gate)
            try:
                controller.unload()
            except Exception:
                pass

    @staticmethod
    def _wait(gate: threading.Barrier | None) -> None:
        if gate is not None:
            try:
                gate.wait()
            except threading.BrokenBarrierError:
                pass

    def _prepare(self, index: int, result: ContestantResult, controller: ChatController) -> None:
        c = result.contestant
        self.emit(index, Phase("loading", c.label))
        t0 = time.perf_counter()
        result.loaded = controller.load(c.model, c.engine)
        result.load_s = time.perf_counter() - t0
        session = controller.session
        assert session is not None
        result.tokenizer_key = tokenizer_key(session)
        if self.warmup:
            self.emit(index, Phase("warming", loaded=result.loaded))
            warm_up(session)
        self.emit(index, Phase("ready", loaded=result.loaded))

    def _answer(self, index: int, result: ContestantResult, controller: ChatController) -> None:
        self.emit(index, Phase("generating", loaded=result.loaded))
        for event in controller.send(self.prompt, self.cancel):
            if isinstance(event, TextDelta):
                result.token_ids.extend(event.token_ids)
            elif isinstance(event, GenerationStats):
                result.stats = event
                result.error = event.error
            self.emit(index, event)
        stats = result.stats
        if stats is None or stats.finish_reason == "error":
            self.emit(index, Phase("failed", result.error or "no answer"))
        elif stats.finish_reason == "cancelled":
            result.error = "cancelled"
            self.emit(index, Phase("cancelled", loaded=result.loaded))
        else:
            self.emit(index, Phase("done", stats.finish_reason, loaded=result.loaded))


class _Cancelled(Exception):
    pass
