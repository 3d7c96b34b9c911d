"""Decode speed of the Core AI engine ÷ decode speed of the MLX engine, same model.

The default model (SmolLM2-135M-Instruct) runs on the MLX engine, and its fp32 Core AI
conversion (or ``--variant``'s; cached under the models dir) runs on the Core AI engine — off macOS that is
Apple's Core AI runtime on the CPU. Same random prompt, same number of tokens, stop
tokens ignored, both timed from this script's clock: decode tok/s =
(n - 1) / (t_last - t_first). A warm-up of each, then ``--runs`` alternating pairs (the
order flips every pair, so drift on a shared machine hits both); medians. Loading is
timed ``--loads`` times from the folder's compiled cache (median).

    python bench/coreai_decode.py [--model PATH] [--prompt-tokens 128] [--gen-tokens 64] [--runs 5] [--variant fp32]

Ends with one JSON line: {"ratio": ..., "coreai_decode_tps": ..., "mlx_decode_tps": ...,
"coreai_load_s": ..., "conversion_s": ..., ...}.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from coreai_models import coreai_variant, source_model  # noqa: E402
from coreml_decode import timed_run  # noqa: E402


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=5, help="alternating pairs after the warm-up")
    ap.add_argument("--loads", type=int, default=5, help="timed loads from the compiled cache")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variant", default="fp32", help="the Core AI conversion to time (fp32, bf16, lut8, ...)")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    import numpy as np

    from anechat.engines.coreai.engine import CoreAIEngine
    from anechat.engines.mlx.engine import MLXEngine

    source = source_model(args.model)
    coreai_dir, conversion_s, fresh = coreai_variant(source, args.variant)
    print(f"{args.variant} conversion {conversion_s:.0f} s{'' if fresh else ' (cached)'}; load average {os.getloadavg()[0]:.1f}", flush=True)
    coreai_engine, mlx_engine = CoreAIEngine(), MLXEngine()
    loads = []
    for _ in range(args.loads):
        coreai_engine.unload()
        t = time.perf_counter()
        coreai = coreai_engine.load(coreai_dir)
        loads.append(time.perf_counter() - t)
    print("loads from the compiled cache: " + ", ".join(f"{s:.2f}" for s in loads) + " s", flush=True)
    mlx = mlx_engine.load(source)
    runtime = coreai.info.extra.get("runtime")
    print(f"Core AI runtime: {runtime}; MLX: {mlx_engine.available().runtime or mlx_engine.available().reason}", flush=True)
    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(0, coreai.tokenizer.vocab_size, size=args.prompt_tokens).tolist()
    sides = {"coreai": coreai, "mlx": mlx}
    for name, session in sides.items():
        timed_run(session, prompt, min(args.gen_tokens, 8))  # warm-up
    results: dict[str, list[dict]] = {name: [] for name in sides}
    load_avg = []
    for i in range(args.runs):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            r = timed_run(sides[name], prompt, args.gen_tokens)
            results[name].append(r)
            print(f"run {i + 1} {name:6s} decode {r['decode_tps']:7.2f} tok/s  prefill {r['prefill_tps']:7.1f} tok/s  ({r['tokens']} tokens)", flush=True)
        load_avg.append(os.getloadavg()[0])
    med = {name: statistics.median(r["decode_tps"] for r in rs) for name, rs in results.items()}
    pre = {name: statistics.median(r["prefill_tps"] for r in rs) for name, rs in results.items()}
    ratios = [c["decode_tps"] / m["decode_tps"] for c, m in zip(results["coreai"], results["mlx"]) if m["decode_tps"]]
    ratio = med["coreai"] / med["mlx"] if med["mlx"] else 0.0
    print(f"decode: Core AI ({runtime}) {med['coreai']:.2f} tok/s, MLX {med['mlx']:.2f} tok/s, ratio {ratio:.3f}")
    print(
        json.dumps(
            {
                "ratio": round(ratio, 4),
                "pair_ratios": [round(r, 4) for r in ratios],
                "coreai_decode_tps": round(med["coreai"], 3),
                "mlx_decode_tps": round(med["mlx"], 3),
                "coreai_prefill_tps": round(pre["coreai"], 2),
                "mlx_prefill_tps": round(pre["mlx"], 2),
                "coreai_runtime": runtime,
                "variant": args.variant,
                "coreai_load_s": round(statistics.median(loads), 3),
                "conversion_s": round(conversion_s, 1),
                "load_average": round(statistics.median(load_avg), 2),
                "prompt_tokens": args.prompt_tokens,
                "gen_tokens": args.gen_tokens,
                "runs": args.runs,
                "model": source.name,
            }
        )
    )
    coreai_engine.unload()


if __name__ == "__main__":
    main()
