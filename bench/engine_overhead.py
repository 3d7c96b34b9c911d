"""What anechat's MLX engine costs over raw mlx-lm: decode tok/s of the engine ÷ decode tok/s
of ``mlx_lm.stream_generate``, same model weights (one loaded model shared by both), same
random prompt, same number of tokens, stop tokens ignored. Target: ratio >= 0.98.

Both sides are timed the same way, from this script's own clock: a timestamp as each
token reaches the caller, decode tok/s = (n - 1) / (t_last - t_first). A warm-up run of
each comes first, then ``--runs`` alternating pairs (the order flips every pair so drift
on a shared machine hits both); the headline is the median of the pairs' ratios.

    python bench/engine_overhead.py [--model PATH] [--prompt-tokens 128] [--gen-tokens 128] [--runs 5]

Ends with one JSON line: {"ratio": ..., "anechat_decode_tps": ..., "mlx_lm_decode_tps": ..., ...}.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="model folder (default: the built-in default model)")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--runs", type=int, default=5, help="alternating pairs after the warm-up")
    ap.add_argument("--seed", type=int, default=0, help="seed of the random prompt")
    return ap.parse_args()


def model_path(arg: str | None) -> str:
    if arg:
        return arg
    from anechat.convert.default_model import ensure_default_model

    return str(ensure_default_model())


def decode_tps(stamps: list[float]) -> float:
    return (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0


def anechat_run(session, prompt: list[int], gen_tokens: int) -> dict:
    from anechat.engines.base import SamplingParams, TextDelta

    session.reset()  # prefill the whole prompt, as stream_generate does
    stamps: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    for event in session.generate_ids(prompt, SamplingParams(max_tokens=gen_tokens), ignore_eos=True):
        if isinstance(event, TextDelta) and event.token_ids:
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())
    return summary(stamps, cpu, start)


def mlx_lm_run(model, tokenizer, prompt: list[int], gen_tokens: int) -> dict:
    from mlx_lm import stream_generate

    stamps: list[float] = []
    cpu: list[float] = []
    start = time.perf_counter()
    for _response in stream_generate(model, tokenizer, prompt, max_tokens=gen_tokens):
        stamps.append(time.perf_counter())
        cpu.append(time.process_time())
    return summary(stamps, cpu, start)


def summary(stamps: list[float], cpu: list[float], start: float) -> dict:
    """Wall-clock figures, and the process CPU time per decoded token (all threads): a
    diagnostic that other processes on a shared machine disturb much less than wall time."""
    cpu_per_token = (cpu[-1] - cpu[0]) / (len(cpu) - 1) if len(cpu) > 1 else 0.0
    return {"tokens": len(stamps), "decode_tps": decode_tps(stamps), "ttft_s": stamps[0] - start, "cpu_s_per_token": cpu_per_token}


def main() -> None:
    args = parse_args()
    import mlx.core as mx
    from mlx_lm.utils import load_tokenizer

    from anechat.engines.mlx.engine import MLXEngine

    path = model_path(args.model)
    engine = MLXEngine()
    session = engine.load(path)
    tokenizer = load_tokenizer(session.info.path)
    tokenizer._eos_token_ids = set()  # as mlx_lm.benchmark does: never stop early
    mx.random.seed(args.seed)
    vocab = min(session.info.vocab_size, session.tokenizer.vocab_size)
    prompt = mx.random.randint(0, vocab, (args.prompt_tokens,)).tolist()

    def ours() -> dict:
        return anechat_run(session, prompt, args.gen_tokens)

    def raw() -> dict:
        return mlx_lm_run(session.model, tokenizer, prompt, args.gen_tokens)

    ours(), raw()  # warm-up
    results: dict[str, list[dict]] = {"anechat": [], "mlx_lm": []}
    for i in range(args.runs):
        order = [("anechat", ours), ("mlx_lm", raw)]
        for name, fn in order if i % 2 == 0 else order[::-1]:
            results[name].append(fn())
            r = results[name][-1]
            print(
                f"run {i + 1} {name:8s} decode {r['decode_tps']:7.2f} tok/s  ttft {r['ttft_s'] * 1000:7.1f} ms  "
                f"cpu/token {r['cpu_s_per_token'] * 1000:6.1f} ms  tokens {r['tokens']}",
                flush=True,
            )
    for name, runs in results.items():
        if any(r["tokens"] != args.gen_tokens for r in runs):
            raise SystemExit(f"{name} did not generate {args.gen_tokens} tokens every run: {[r['tokens'] for r in runs]}")
    a = statistics.median(r["decode_tps"] for r in results["anechat"])
    b = statistics.median(r["decode_tps"] for r in results["mlx_lm"])
    pairs = [x["decode_tps"] / y["decode_tps"] for x, y in zip(results["anechat"], results["mlx_lm"])]
    record = {
        # each pair ran back to back, so the median of pair ratios shrugs off a machine
        # whose speed drifts (other processes on shared cores); the ratio of medians is kept too
        "ratio": round(statistics.median(pairs), 4),
        "ratio_of_medians": round(a / b, 4),
        "anechat_decode_tps": round(a, 2),
        "mlx_lm_decode_tps": round(b, 2),
        "pair_ratios": [round(p, 4) for p in pairs],
        # CPU seconds per token, anechat ÷ mlx-lm (lower is cheaper): extra work would show here
        "cpu_per_token_ratio": round(
            statistics.median(r["cpu_s_per_token"] for r in results["anechat"])
            / statistics.median(r["cpu_s_per_token"] for r in results["mlx_lm"]),
            4,
        ),
        "anechat_ttft_s": round(statistics.median(r["ttft_s"] for r in results["anechat"]), 4),
        "mlx_lm_ttft_s": round(statistics.median(r["ttft_s"] for r in results["mlx_lm"]), 4),
        "model": session.info.name,
        "quantization": session.info.quantization,
        "runtime": session.info.extra.get("runtime", ""),
        "prompt_tokens": args.prompt_tokens,
        "gen_tokens": args.gen_tokens,
        "runs": args.runs,
        "target": ">= 0.98",
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
