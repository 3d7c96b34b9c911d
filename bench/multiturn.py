"""What keeping the KV cache between turns buys: time to first token of turn 8 ÷ turn 1 of an
8-turn chat on the default model, with anechat's cache reuse (only the new tokens are
prefilled) and with the whole history prefilled again every turn (``session.reset()``
before each turn, what a chat loop without reuse does). Target: anechat ratio <= 1.3.

Both modes see the very same conversation: the answers come from the reuse pass (greedy)
and the re-prefill pass replays its histories. Every pass is repeated ``--repeats``
times after a warm-up; per-turn TTFTs are medians.

    python bench/multiturn.py [--model PATH] [--answer-tokens 64] [--repeats 3]

Ends with one JSON line: {"ratio": <anechat turn8/turn1>, "reprefill_ratio": ..., ...}.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402

QUESTIONS = [
    "Hi! I'm planning a trip to Lisbon. What should I see first?",
    "How many days would you recommend for the city itself?",
    "What local dishes should I try, and where?",
    "Is it easy to get around by public transport?",
    "What day trips are worth it from Lisbon?",
    "Which neighbourhood is best to stay in for a first visit?",
    "Any tips about the weather in October?",
    "Finally, summarise the plan in three short bullet points.",
]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: the built-in default model)")
    ap.add_argument("--answer-tokens", type=int, default=64, help="max tokens of each answer")
    ap.add_argument("--repeats", type=int, default=3)
    return ap.parse_args()


def model_path(arg: str | None) -> str:
    if arg:
        return arg
    from anechat.convert.default_model import ensure_default_model

    return str(ensure_default_model())


def final_stats(session, messages, params):
    from anechat.engines.base import GenerationStats

    for event in session.generate(messages, params):
        if isinstance(event, GenerationStats):
            return event
    raise RuntimeError("no final stats")


def reuse_pass(session, params) -> tuple[list, list[list[dict]]]:
    """One chat with cache reuse: each turn's stats and the history it was given."""
    session.reset()
    messages: list[dict] = []
    stats, histories = [], []
    for question in QUESTIONS:
        messages.append({"role": "user", "content": question})
        histories.append(list(messages))
        s = final_stats(session, messages, params)
        if s.error:
            raise SystemExit(s.error)
        stats.append(s)
        messages.append({"role": "assistant", "content": s.text})
    return stats, histories


def reprefill_pass(session, params, histories) -> list:
    out = []
    for history in histories:
        session.reset()
        out.append(final_stats(session, history, params))
    return out


def main() -> None:
    args = parse_args()
    from anechat.engines.base import SamplingParams
    from anechat.engines.mlx.engine import MLXEngine

    engine = MLXEngine()
    session = engine.load(model_path(args.model))
    params = SamplingParams(temperature=0.0, max_tokens=args.answer_tokens)

    _, histories = reuse_pass(session, params)  # warm-up, and the conversation both modes replay
    reprefill_pass(session, params, histories[:2])
    reuse_runs, reprefill_runs = [], []
    for i in range(args.repeats):
        reuse, seen = reuse_pass(session, params)
        if seen != histories:
            raise SystemExit("greedy answers changed between passes: the comparison would not be fair")
        reuse_runs.append(reuse)
        reprefill_runs.append(reprefill_pass(session, params, histories))
        r, p = reuse_runs[-1], reprefill_runs[-1]
        print(
            f"pass {i + 1}: reuse TTFT turn1 {r[0].ttft_s * 1000:6.1f} ms turn8 {r[-1].ttft_s * 1000:6.1f} ms "
            f"(prefilled {r[-1].prompt_tokens}, cached {r[-1].cached_tokens}) | "
            f"re-prefill turn1 {p[0].ttft_s * 1000:6.1f} ms turn8 {p[-1].ttft_s * 1000:6.1f} ms (prefilled {p[-1].prompt_tokens})",
            flush=True,
        )

    def per_turn(runs) -> list[float]:
        return [statistics.median(run[t].ttft_s for run in runs) for t in range(len(QUESTIONS))]

    reuse_ttft, reprefill_ttft = per_turn(reuse_runs), per_turn(reprefill_runs)
    record = {
        "ratio": round(reuse_ttft[-1] / reuse_ttft[0], 4),
        "reprefill_ratio": round(reprefill_ttft[-1] / reprefill_ttft[0], 4),
        "reuse_ttft_s": [round(t, 4) for t in reuse_ttft],
        "reprefill_ttft_s": [round(t, 4) for t in reprefill_ttft],
        "turn8_context_tokens": reuse_runs[-1][-1].cached_tokens + reuse_runs[-1][-1].prompt_tokens,
        "turn8_prefilled_reuse": reuse_runs[-1][-1].prompt_tokens,
        "turn8_prefilled_reprefill": reprefill_runs[-1][-1].prompt_tokens,
        "model": session.info.name,
        "runtime": session.info.extra.get("runtime", ""),
        "answer_tokens": args.answer_tokens,
        "repeats": args.repeats,
        "target": "<= 1.3",
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
