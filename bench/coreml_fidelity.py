"""How faithful the Core ML conversions of the default model are to the source, and how fast.

Converts SmolLM2-135M-Instruct to Core ML four ways — fp16, LUT6 (FFN + LM head), LUT4
(ANEMLL's LUT4 recipe: FFN 4, LM head 6) and the recommended default recipe (more with
``--variants``, e.g. ``lut4-uniform``) — caching each under the models dir with its conversion
time (reused only when made by the same options and converter code), then measures:

- fp16: greedy tokens from the Core ML engine vs the MLX engine (fp32 source), the
  first 32 tokens of 3 chat prompts (stop tokens ignored); ``fp16_match`` is the
  share of those 96 tokens that agree before the first divergence; at a divergence, the
  float32 source's logit margin between the two tokens (``fp16_divergence_margins``: near 0
  is a tie that fp16 rounding may break either way);
- every variant: ``convert --check``'s figures (top-1 agreement with the float32 source
  over 128 teacher-forced positions of a fixed English text, perplexity of both, size
  beside fp16), with the MIL executor rounding activations to fp16 as the Neural Engine does;
- load: a whole cold ``anechat run -e coreml`` of the default recipe (median of 3, the load
  cache warm) and its load time.

Off macOS the Core ML side runs in the MIL executor. Ends with one JSON line holding every
row of issue 15's table: {"ratio": <lut6_top1>, "lut6_top1", "lut4_top1", "default_top1",
"default_size_vs_fp16", "fp16_conversion_s", "lut6_conversion_s", "cold_run_s", ...}.

    python bench/coreml_fidelity.py [--model PATH] [--variants fp16,lut6,lut4,default]

``--variants`` limits the run to those variants (fp16 is always measured: sizes are relative
to it); rows of variants left out are null in the JSON line.
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402

from coreml_models import VARIANTS, coreml_variant, folder_bytes, source_model  # noqa: E402

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain in one sentence why the sky is blue.",
]



def prefix_match(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def greedy(session, ids: list[int], n: int) -> list[int]:
    from anechat.engines.base import SamplingParams

    session.reset()
    events = list(session.generate_ids(ids, SamplingParams(max_tokens=n), ignore_eos=True))
    return [t for e in events[:-1] for t in e.token_ids]


def source_margin(source, ids: list[int], mine: int, theirs: int) -> float:
    """How far apart the float32 source puts two tokens after ``ids`` (its logits; a margin
    near 0 is a tie that fp16 rounding may break either way)."""
    from anechat.engines.coreml.convert.check import source_logits

    last = source_logits(source, ids)[-1]
    return float(last[theirs] - last[mine])


def cold_run_seconds(folder) -> float:
    import os
    import statistics
    import subprocess
    import sys
    import time
    from pathlib import Path

    anechat = Path(sys.executable).parent / "anechat"
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([str(anechat), "run", "-e", "coreml", "-m", str(folder), "--max-tokens", "1", "Hi"],
                       capture_output=True, check=True, env={**os.environ, "NO_COLOR": "1"})
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    ap.add_argument("--variants", default="fp16,lut6,lut4,default", help=f"comma-separated, of {', '.join(VARIANTS)}")
    args = ap.parse_args()
    variants = ["fp16", *(v for v in dict.fromkeys(args.variants.split(",")) if v != "fp16")]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r}: choose from {', '.join(VARIANTS)}")
    from anechat.engines.coreml.convert.check import check_conversion
    from anechat.engines.coreml.engine import CoreMLEngine
    from anechat.engines.mlx.engine import MLXEngine

    source = source_model(args.model)
    folders, seconds = {}, {}
    for variant in variants:
        folders[variant], seconds[variant], fresh = coreml_variant(source, variant)
        print(f"{variant}: {folders[variant].name} ({folder_bytes(folders[variant]) / 1e6:.0f} MB, conversion {seconds[variant]:.0f} s{'' if fresh else ', cached'})")

    mlx = MLXEngine().load(source)
    fp16 = CoreMLEngine(fp16_activations=True).load(folders["fp16"])
    print(f"Core ML runtime: {fp16.info.extra['runtime']}")
    matched = total = full = 0
    margins: list[float] = []
    for text in PROMPTS:
        ids = fp16.prompt_ids([{"role": "user", "content": text}])
        a, b = greedy(fp16, ids, 32), greedy(mlx, ids, 32)
        n = prefix_match(a, b)
        matched, total, full = matched + n, total + 32, full + (n == 32)
        print(f"fp16 vs MLX, {text!r}: {n}/32 tokens agree before the first difference")
        if n < 32:
            margin = source_margin(source, ids + b[:n], a[n], b[n])
            margins.append(round(margin, 4))
            print(f"   core ml: {fp16.tokenizer.decode(a)!r}\n   mlx:     {mlx.tokenizer.decode(b)!r}\n"
                  f"   there the float32 source prefers {mlx.tokenizer.decode([b[n]])!r} to {fp16.tokenizer.decode([a[n]])!r} "
                  f"by {margin:.4f} logits")
    fp16_match = matched / total
    del fp16, mlx

    figures = {}
    for variant in variants:
        figures[variant] = check_conversion(folders[variant], source)
        f = figures[variant]
        print(f"{variant}: top-1 {f['top1_agreement']:.3f}, perplexity {f['perplexity']:.2f} (fp32 {f['perplexity_source_fp32']:.2f}), "
              f"{f['size_vs_fp16']:.0%} of fp16")
    cold_variant = "default" if "default" in folders else "fp16"
    cold = cold_run_seconds(folders[cold_variant])
    print(f"cold `anechat run -e coreml` of {cold_variant} (cache warm): {cold:.1f} s")

    def top1(variant):
        return figures[variant]["top1_agreement"] if variant in figures else None

    print(
        json.dumps(
            {
                "ratio": top1("lut6"),
                "lut6_top1": top1("lut6"),
                "lut4_top1": top1("lut4"),
                "lut4_uniform_top1": top1("lut4-uniform"),
                "default_recipe": VARIANTS["default"],
                "default_top1": top1("default"),
                "default_size_vs_fp16": figures["default"]["size_vs_fp16"] if "default" in figures else None,
                "fp16_conversion_s": round(seconds["fp16"], 1),
                "lut6_conversion_s": round(seconds["lut6"], 1) if "lut6" in seconds else None,
                "cold_run_s": round(cold, 2),
                "cold_run_variant": cold_variant,
                "fp16_match": round(fp16_match, 4),
                "fp16_full_matches": f"{full}/{len(PROMPTS)}",
                "fp16_divergence_margins": margins,
                "perplexity": {k: f["perplexity"] for k, f in figures.items()},
                "perplexity_source_fp32": figures["fp16"]["perplexity_source_fp32"],
                "top1": {k: f["top1_agreement"] for k, f in figures.items()},
                "size_vs_fp16": {k: f["size_vs_fp16"] for k, f in figures.items()},
                "conversion_s": {k: round(v, 1) for k, v in seconds.items()},
                "folder_bytes": {k: folder_bytes(v) for k, v in folders.items()},
                "fp16_peak_activation": max(figures["fp16"]["fp16_peak_activation"]),
                "load_average": __import__("os").getloadavg()[0],
                "model": source.name,
            }
        )
    )


if __name__ == "__main__":
    main()
