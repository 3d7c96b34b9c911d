"""What a comparison produces: contestants, their results, and the summary against the
first one (ratios, token agreement). Pure data and arithmetic; see the package docstring
for the definitions."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Literal, Sequence, Union

from anechat.chat.controller import LoadedModel
from anechat.engines.base import GenerationStats, SamplingParams, TextDelta
from anechat.engines.errors import InvalidParameter
from anechat.engines.session import common_prefix_length

PhaseName = Literal["waiting", "loading", "warming", "ready", "generating", "done", "failed", "cancelled"]


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
    #: False when the baseline runs on another engine: engines measure peak memory their own way
    #: (mlx: MLX's allocator peak; coreml: the process's resident memory), so that ratio is rough
    memory_like_for_like: bool = True


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
                memory_like_for_like=r.contestant.engine == base.contestant.engine,
            )
        )
    return rows


def _same_tokenizer(a: ContestantResult, b: ContestantResult) -> bool:
    return a.tokenizer_key is None or b.tokenizer_key is None or a.tokenizer_key == b.tokenizer_key
