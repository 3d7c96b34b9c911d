"""The benchmark method of ``mlx_lm.benchmark``, for any engine.

For each contestant (a model on an engine) and each prompt length:

1. a random prompt of exactly N token ids (seeded, so every engine gets the same
   prompt; drawn from the tokenizer's vocabulary, special tokens included, as
   mlx_lm draws from the model's);
2. one warm-up run, not recorded;
3. ``runs`` timed runs, each from an empty cache (the whole prompt is prefilled)
   generating exactly ``gen_tokens`` tokens — stop tokens are ignored
   (``Session.generate_ids(..., ignore_eos=True)``) so every run does the same work;
4. the **median** of each figure over the runs (mlx_lm prints the mean; both are kept).

Figures per run come from the engine's own :class:`GenerationStats`: prefill tok/s
(prompt tokens / time to the first token), decode tok/s (tokens after the first /
their time), TTFT and the turn's peak memory.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Callable, Sequence

from anechat.engines.base import CancelToken, GenerationStats, SamplingParams, Session
from anechat.engines.errors import AnechatError, EngineError, InvalidParameter

if TYPE_CHECKING:
    from anechat.compare import Contestant

Progress = Callable[[str], None]
FIGURES = ("prefill_tps", "decode_tps", "ttft_s", "peak_memory_bytes")


@dataclass(frozen=True)
class BenchSettings:
    prompt_tokens: tuple[int, ...] = (128, 512)
    gen_tokens: int = 128
    runs: int = 3
    seed: int = 0
    warmup: bool = True

    def validate(self) -> "BenchSettings":
        if not self.prompt_tokens:
            raise InvalidParameter("--prompt-tokens is empty: give lengths such as 128,512")
        if any(n < 1 for n in self.prompt_tokens):
            raise InvalidParameter(f"--prompt-tokens {','.join(map(str, self.prompt_tokens))} is invalid: use lengths >= 1")
        if self.gen_tokens < 2:
            raise InvalidParameter(f"--gen-tokens {self.gen_tokens} is invalid: use 2 or more (decode speed needs two tokens)")
        if self.runs < 1:
            raise InvalidParameter(f"--runs {self.runs} is invalid: use 1 or more")
        return self


def parse_lengths(text: str) -> tuple[int, ...]:
    """``"128,512"`` -> (128, 512); a clear error for anything else."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        lengths = tuple(int(p) for p in parts)
    except ValueError:
        raise InvalidParameter(f"--prompt-tokens {text!r} is invalid: use comma-separated integers such as 128,512") from None
    if not lengths:
        raise InvalidParameter("--prompt-tokens is empty: give lengths such as 128,512")
    return lengths


@dataclass(frozen=True)
class RunFigures:
    prompt_tokens: int
    generation_tokens: int
    prefill_tps: float
    decode_tps: float
    ttft_s: float
    peak_memory_bytes: int
    total_s: float


@dataclass
class CellResult:
    """One engine × model × prompt length: the medians, the means and every run."""

    engine: str
    model: str
    runtime: str = ""
    model_path: str = ""
    quantization: str = ""
    format: str = ""
    prompt_tokens: int = 0
    gen_tokens: int = 0
    load_s: float | None = None
    runs: list[RunFigures] = field(default_factory=list)
    error: str | None = None

    def median(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.runs]
        return float(statistics.median(values)) if values else None

    def mean(self, name: str) -> float | None:
        values = [getattr(r, name) for r in self.runs]
        return float(statistics.fmean(values)) if values else None

    def as_dict(self) -> dict:
        d = asdict(self)
        d["median"] = {name: self.median(name) for name in FIGURES}
        d["mean"] = {name: self.mean(name) for name in FIGURES}
        return d


def random_prompt(vocab_size: int, length: int, seed: int) -> list[int]:
    """``length`` token ids drawn uniformly from ``[0, vocab_size)``; the same for the same seed."""
    import numpy as np

    rng = np.random.default_rng([seed, length])
    return rng.integers(0, max(vocab_size, 1), size=length).tolist()


def session_vocab_size(session: Session) -> int:
    """The ids every part of the model understands: the smaller of tokenizer and embedding sizes."""
    sizes = [int(getattr(session.info, "vocab_size", 0) or 0)]
    tok = getattr(session, "tokenizer", None)
    if tok is not None:
        sizes.append(int(getattr(tok, "vocab_size", 0) or 0))
    sizes = [s for s in sizes if s > 0]
    if not sizes:
        raise InvalidParameter("the model reports no vocabulary size, so no random prompt can be drawn")
    return min(sizes)


def timed_run(session: Session, prompt_ids: Sequence[int], gen_tokens: int, cancel: CancelToken | None = None) -> RunFigures:
    """One run from an empty cache; raises EngineError when the engine failed or stopped early."""
    session.reset()
    params = SamplingParams(temperature=0.0, max_tokens=gen_tokens)
    started = time.perf_counter()
    stats: GenerationStats | None = None
    for event in session.generate_ids(prompt_ids, params, cancel, ignore_eos=True):
        if isinstance(event, GenerationStats):
            stats = event
    total = time.perf_counter() - started
    if stats is None or stats.finish_reason == "error":
        raise EngineError(f"the engine failed during the benchmark: {stats.error if stats else 'no result'}")
    if stats.finish_reason == "cancelled":
        raise EngineError("the benchmark was cancelled")
    return RunFigures(
        prompt_tokens=stats.prompt_tokens,
        generation_tokens=stats.generation_tokens,
        prefill_tps=stats.prefill_tps,
        decode_tps=stats.decode_tps,
        ttft_s=stats.ttft_s,
        peak_memory_bytes=stats.peak_memory_bytes,
        total_s=total,
    )


def bench_cell(
    session: Session,
    cell: CellResult,
    settings: BenchSettings,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> CellResult:
    """Fill ``cell`` (its prompt_tokens/gen_tokens set) with the warm-up and timed runs."""
    say = progress or (lambda _msg: None)
    context = int(getattr(session.info, "context_length", 0) or 0)
    if context and cell.prompt_tokens + cell.gen_tokens > context:
        cell.error = (
            f"{cell.prompt_tokens} prompt + {cell.gen_tokens} generated tokens exceed the model's "
            f"context of {context} tokens"
        )
        return cell
    prompt = random_prompt(session_vocab_size(session), cell.prompt_tokens, settings.seed)
    try:
        if settings.warmup:
            say(f"{cell.model} · {cell.engine}: warm-up, prompt {cell.prompt_tokens} tokens")
            timed_run(session, prompt, cell.gen_tokens, cancel)
        for i in range(settings.runs):
            say(f"{cell.model} · {cell.engine}: run {i + 1}/{settings.runs}, prompt {cell.prompt_tokens} tokens")
            cell.runs.append(timed_run(session, prompt, cell.gen_tokens, cancel))
    except AnechatError as exc:
        cell.error = str(exc)
    finally:
        session.reset()
    return cell


def run_bench(
    contestants: Sequence["Contestant"],
    settings: BenchSettings,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> list[CellResult]:
    """Every contestant (a model on an engine) × prompt length; one model loaded at a time.

    A contestant that cannot load gives cells with ``error`` set (the others still
    run); bad settings raise InvalidParameter.
    """
    from anechat.chat.controller import ChatController

    settings.validate()
    if not contestants:
        raise InvalidParameter("nothing to benchmark: give a model and an engine")
    say = progress or (lambda _msg: None)
    cells: list[CellResult] = []
    for contestant in contestants:
        model, engine = contestant.model, contestant.engine
        controller = ChatController()
        row = [CellResult(engine=engine, model=contestant.model_label, prompt_tokens=n, gen_tokens=settings.gen_tokens) for n in settings.prompt_tokens]
        cells.extend(row)
        try:
            say(f"{contestant.label}: loading")
            t0 = time.perf_counter()
            loaded = controller.load(model, engine)
            load_s = time.perf_counter() - t0
            if loaded.note:
                say(f"{contestant.label}: {loaded.note}")
            session = controller.session
            assert session is not None
            for cell in row:
                cell.model, cell.runtime, cell.model_path = loaded.name, loaded.runtime, str(loaded.path)
                cell.quantization, cell.format, cell.load_s = loaded.quantization, loaded.format, load_s
                bench_cell(session, cell, settings, say, cancel)
        except AnechatError as exc:
            for cell in row:
                if not cell.runs and cell.error is None:
                    cell.error = str(exc)
        finally:
            controller.unload()
    return cells
