"""Decode speed of the Core ML engine's MIL executor ÷ decode speed of the MLX engine, same model.

The default model (SmolLM2-135M-Instruct) runs on the MLX engine, and its fp16 Core
ML conversion (cached under the models dir) runs on the Core ML engine — off macOS
that is the MIL executor (numpy on the CPU). Same random prompt, same number of
tokens, stop tokens ignored, both timed from this script's clock: decode tok/s =
(n - 1) / (t_last - t_first). A warm-up of each, then ``--runs`` alternating pairs
(the order flips every pair, so drift on a shared machine hits both); medians.

    python bench/coreml_decode.py [--model PATH] [--prompt-tokens 128] [--gen-tokens 64] [--runs 3]

Ends with one JSON line: {"ratio": ..., "coreml_decode_tps": ..., "mlx_decode_tps": ..., ...}.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

from coreml_models import coreml_variant, source_model  # noqa: E402


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3, help="alternating pairs after the warm-up")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def timed_run(session, prompt: list[int], gen_tokens: int) -> dict:
    from anechat.engines.base import SamplingParams, TextDelta

    session.reset()  # prefill the whole prompt every run
    stamps: list[float] = []
    for event in session.generate_ids(prompt, SamplingParams(max_tokens=gen_tokens), ignore_eos=True):
        if isinstance(event, TextDelta) and event.token_ids:
            stamps.append(time.perf_counter())
    tps = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 and stamps[-1] > stamps[0] else 0.0
    return {"tokens": len(stamps), "decode_tps": tps, "prefill_tps": session.last_stats.prefill_tps}


def main() -> None:
    args = parse_args()
    import numpy as np

    from anechat.engines.coreml.engine import CoreMLEngine
    from anechat.engines.mlx.engine import MLXEngine

    source = source_model(args.model)
    coreml_dir, _, _ = coreml_variant(source, "fp16")
    coreml_engine, mlx_engine = CoreMLEngine(), MLXEngine()
    t = time.perf_counter()
    coreml = coreml_engine.load(coreml_dir)
    coreml_load = time.perf_counter() - t
    mlx = mlx_engine.load(source)
    runtime = coreml.info.extra.get("runtime")
    print(f"Core ML runtime: {runtime}; MLX: {mlx_engine.available().runtime or mlx_engine.available().reason}")
    rng = np.random.default_rng(args.seed)
    prompt = rng.integers(0, coreml.tokenizer.vocab_size, size=args.prompt_tokens).tolist()
    sides = {"coreml": coreml, "mlx": mlx}
    for name, session in sides.items():
        timed_run(session, prompt, min(args.gen_tokens, 8))  # warm-up
    results: dict[str, list[dict]] = {name: [] for name in sides}
    for i in range(args.runs):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            r = timed_run(sides[name], prompt, args.gen_tokens)
            results[name].append(r)
            print(f"run {i + 1} {name:7s} decode {r['decode_tps']:7.2f} tok/s  prefill {r['prefill_tps']:7.1f} tok/s  ({r['tokens']} tokens)")
    med = {name: statistics.median(r["decode_tps"] for r in rs) for name, rs in results.items()}
    pre = {name: statistics.median(r["prefill_tps"] for r in rs) for name, rs in results.items()}
    ratio = med["coreml"] / med["mlx"] if med["mlx"] else 0.0
    print(f"decode: Core ML ({runtime}) {med['coreml']:.2f} tok/s, MLX {med['mlx']:.2f} tok/s, ratio {ratio:.3f}")
    print(
        json.dumps(
            {
                "ratio": round(ratio, 4),
                "coreml_decode_tps": round(med["coreml"], 3),
                "mlx_decode_tps": round(med["mlx"], 3),
                "coreml_prefill_tps": round(pre["coreml"], 2),
                "mlx_prefill_tps": round(pre["mlx"], 2),
                "coreml_runtime": runtime,
                "coreml_load_s": round(coreml_load, 2),
                "prompt_tokens": args.prompt_tokens,
                "gen_tokens": args.gen_tokens,
                "runs": args.runs,
                "model": source.name,
            }
        )
    )


if __name__ == "__main__":
    main()
