"""One process vs two local ranks (pipeline) on the default model, in one run: the MLX
engine alone, then as rank 0 of a two-rank (``--ranks``) session over the ring backend
on 127.0.0.1.

- greedy tokens identical (the same prompt, stop tokens ignored);
- per-rank memory ÷ one process: the weights each rank holds (target <= 0.6), its
  MLX active memory after the answers (the weights it really holds) and its MLX peak
  during the timed answers;
- decode tok/s, ranks ÷ one process (on one machine with 2 cores this measures the
  overhead of the collectives per token, not a speed-up).

Each side runs in a process of its own (``mx.distributed`` joins one ring per process;
fresh peaks). Warm-up first, then ``--runs`` timed answers; medians.

    python bench/distributed.py [--model PATH] [--gen-tokens 64] [--runs 3] [--shard pipeline] [--ranks 2]

Ends with one JSON line; its headline ``ratio`` is the largest rank's weights ÷ the
single process's weights.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

PROMPT = "Write a long, detailed story about a lighthouse keeper who finds a message in a bottle. " * 3


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="MLX model folder (default: the built-in default model)")
    ap.add_argument("--gen-tokens", type=int, default=64)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--shard", default="pipeline", choices=("pipeline", "tensor"))
    ap.add_argument("--ranks", type=int, default=2, help="local ranks (default 2)")
    ap.add_argument("--side", choices=("single", "ranks"), help=argparse.SUPPRESS)
    return ap.parse_args()


def measure(args) -> dict:
    """This process's side: load, warm up, time ``--runs`` answers."""
    from anechat.engines.base import GenerationStats, SamplingParams
    from anechat.engines.mlx.engine import MLXEngine

    if args.side == "ranks":
        from anechat.engines.mlx.distributed.engine import DistributedMLXEngine
        from anechat.engines.mlx.distributed.hosts import plan_from

        engine = DistributedMLXEngine(plan_from(",".join(["127.0.0.1"] * args.ranks), None, args.shard))
    else:
        engine = MLXEngine()
    started = time.perf_counter()
    session = engine.load(args.model)
    load_s = time.perf_counter() - started
    prompt = session.tokenizer.encode(PROMPT)
    params = SamplingParams(max_tokens=args.gen_tokens)
    tokens, decode, peaks = [], [], []
    for run in range(args.runs + 1):
        session.reset()
        ids, stats = [], None
        for event in session.generate_ids(prompt, params, ignore_eos=True):
            if isinstance(event, GenerationStats):
                stats = event
            else:
                ids.extend(event.token_ids)
        if stats.error:
            raise SystemExit(f"{args.side}: {stats.error}")
        report = engine.memory()
        ranks = report.details.get("ranks") or [{"weights": report.model_bytes, "peak": stats.peak_memory_bytes, "active": report.active_bytes}]
        if run == 0:
            tokens = ids
            continue  # warm-up
        decode.append(stats.decode_tps)
        peaks.append([r["peak"] for r in ranks])
    out = {
        "tokens": tokens,
        "decode_tps": statistics.median(decode),
        "weights": [r["weights"] for r in ranks],
        "active": [r["active"] for r in ranks],  # after the last answer: weights + KV cache + MLX's buffers
        "peak": [max(p[i] for p in peaks) for i in range(len(ranks))],
        "load_s": load_s,
        "runtime": engine.available().runtime,
    }
    if hasattr(engine, "shutdown"):
        engine.shutdown()
    return out


def side(args, name: str) -> dict:
    command = [sys.executable, __file__, "--side", name, "--model", args.model, "--gen-tokens", str(args.gen_tokens), "--runs", str(args.runs), "--shard", args.shard, "--ranks", str(args.ranks)]
    done = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ))
    if done.returncode != 0:
        raise SystemExit(f"the {name} side failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse_args()
    if args.model is None:
        from anechat.convert.default_model import ensure_default_model

        args.model = str(ensure_default_model())
    if args.side:
        print(json.dumps(measure(args)))
        return
    single = side(args, "single")
    ranks = side(args, "ranks")
    same = sum(a == b for a, b in zip(single["tokens"], ranks["tokens"]))
    weights_ratio = max(ranks["weights"]) / single["weights"][0]
    peak_ratio = max(ranks["peak"]) / single["peak"][0]
    decode_ratio = ranks["decode_tps"] / single["decode_tps"]
    print(f"model            {os.path.basename(args.model.rstrip('/'))} · {args.gen_tokens} tokens · {args.runs} runs · {args.shard}")
    print(f"greedy tokens    {same}/{len(single['tokens'])} identical")
    print(f"weights / rank   {', '.join(f'{w / 2**20:.1f} MiB' for w in ranks['weights'])} vs {single['weights'][0] / 2**20:.1f} MiB alone (ratio {weights_ratio:.3f}, target <= 0.6)")
    print(f"active / rank    {', '.join(f'{a / 2**20:.1f} MiB' for a in ranks['active'])} vs {single['active'][0] / 2**20:.1f} MiB alone")
    print(f"peak / rank      {', '.join(f'{p / 2**20:.1f} MiB' for p in ranks['peak'])} vs {single['peak'][0] / 2**20:.1f} MiB alone (ratio {peak_ratio:.3f})")
    print(f"decode tok/s     {ranks['decode_tps']:.1f} on {args.ranks} ranks vs {single['decode_tps']:.1f} alone (ratio {decode_ratio:.3f})")
    print(f"load             {ranks['load_s']:.1f} s on {args.ranks} ranks vs {single['load_s']:.1f} s alone")
    record = {
        "bench": "distributed",
        "model": os.path.basename(args.model.rstrip("/")),
        "shard": args.shard,
        "ranks": args.ranks,
        "ratio": round(weights_ratio, 4),
        "tokens_identical": same == len(single["tokens"]) == len(ranks["tokens"]),
        "token_agreement": same / max(len(single["tokens"]), 1),
        "weights_ratio": round(weights_ratio, 4),
        "peak_ratio": round(peak_ratio, 4),
        "decode_ratio": round(decode_ratio, 4),
        "decode_tps": {"single": round(single["decode_tps"], 2), "ranks": round(ranks["decode_tps"], 2)},
        "weights_bytes": {"single": single["weights"][0], "ranks": ranks["weights"]},
        "active_bytes": {"single": single["active"][0], "ranks": ranks["active"]},
        "peak_bytes": {"single": single["peak"][0], "ranks": ranks["peak"]},
        "load_s": {"single": round(single["load_s"], 2), "ranks": round(ranks["load_s"], 2)},
        "load_average": os.getloadavg(),
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
