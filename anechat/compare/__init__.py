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

from anechat.compare.harness import run_compare, tokenizer_key, warm_up
from anechat.compare.results import (
    Agreement,
    CompareEvent,
    CompareReport,
    Contestant,
    ContestantResult,
    OnEvent,
    Phase,
    PhaseName,
    SummaryRow,
    pair_contestants,
    ratio,
    summarize,
    token_agreement,
)

__all__ = [
    "Agreement",
    "CompareEvent",
    "CompareReport",
    "Contestant",
    "ContestantResult",
    "OnEvent",
    "Phase",
    "PhaseName",
    "SummaryRow",
    "pair_contestants",
    "ratio",
    "run_compare",
    "summarize",
    "token_agreement",
    "tokenizer_key",
    "warm_up",
]
