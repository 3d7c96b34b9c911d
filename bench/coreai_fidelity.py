"""How faithful the Core AI conversions of the default model are to the source.

Converts SmolLM2-135M-Instruct to Core AI five ways — fp32, bf16, and fp32 weights
compressed as LUT8, LUT6 (k-means palettes, groups of 32 channels) and int8 (per
channel) — caching each under the models dir, then measures:

- fp32 / bf16: greedy tokens from the Core AI engine vs the MLX engine (fp32 source), the
  first 32 tokens of 3 chat prompts (stop tokens ignored); ``<dtype>_match`` is the share
  of those 96 tokens that agree before the first divergence (targets: fp32 100%, bf16 ≥ 90%);
- LUT8 / LUT6 / int8: top-1 agreement with the Core AI fp32 conversion over 128
  teacher-forced positions of a fixed English text (both see the same tokens; argmax
  compared at each). ``fp32_vs_mlx_top1`` is the same figure for fp32 against MLX.

Off macOS Core AI runs Apple's Linux runtime on the CPU. Ends with one JSON line:
{"ratio": <fp32_match>, "fp32_match": ..., "bf16_match": ..., "lut8_top1": ..., "lut6_top1": ...,
"int8_top1": ..., conversion times and folder sizes}.

    python bench/coreai_fidelity.py [--model PATH] [--dtypes fp32,bf16] [--compressed lut8,lut6,int8]

``--dtypes`` / ``--compressed`` measure a subset (an empty list skips that part; the
conversions are slow on a loaded machine, and a later run reuses the cached ones).
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402

from coreai_models import VARIANTS, coreai_variant, folder_bytes, source_model  # noqa: E402
from coreml_fidelity import PROMPTS, greedy, prefix_match  # noqa: E402

from anechat.engines.coreml.convert.check import POSITIONS, eval_ids  # noqa: E402

DTYPES = ("fp32", "bf16")
COMPRESSED = ("lut8", "lut6", "int8")


def teacher_forced_logits(session, ids: list[int]):
    """(len(ids), vocab) logits from an empty cache, whole batches through ``prefill`` (which
    returns every position's logits; a compressed model expands its weights once per call,
    not once per token), the rest one ``infer`` per position."""
    import numpy as np

    session.reset()
    batch, rows = session.batch_size, []
    while len(rows) < len(ids):
        pos = len(rows)
        if len(ids) - pos >= batch:
            rows.extend(session.runtime.prefill(ids[pos : pos + batch], pos))
        else:
            rows.append(session.runtime.infer(ids[pos], pos))
    session.reset()
    return np.stack(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="greedy match vs MLX for these (fp32, bf16)")
    ap.add_argument("--compressed", default=",".join(COMPRESSED), help="top-1 agreement vs fp32 for these (lut8, lut6, int8)")
    args = ap.parse_args()
    dtypes = [d for d in args.dtypes.split(",") if d]
    compressed = [c for c in args.compressed.split(",") if c]
    import mlx.core as mx
    import numpy as np

    from anechat.engines.coreai.engine import CoreAIEngine
    from anechat.engines.mlx.engine import MLXEngine

    source = source_model(args.model)
    folders, seconds = {}, {}
    for variant in ["fp32", *(d for d in dtypes if d != "fp32"), *compressed]:
        folders[variant], seconds[variant], fresh = coreai_variant(source, variant)
        load = __import__("os").getloadavg()[0]
        print(f"{variant}: {folders[variant].name} ({folder_bytes(folders[variant]) / 1e6:.0f} MB, conversion {seconds[variant]:.0f} s{'' if fresh else ', cached'}; load {load:.1f})", flush=True)

    mlx = MLXEngine().load(source)
    match, full = {}, {}
    text_ids = eval_ids(mlx.tokenizer)  # the fixed English text Core ML's --check scores
    for dtype in sorted(set(dtypes) | {"fp32"}, key=list(VARIANTS).index):
        engine = CoreAIEngine()
        session = engine.load(folders[dtype])
        print(f"Core AI runtime: {session.info.extra['runtime']} ({dtype})", flush=True)
        matched = total = full[dtype] = 0
        for text in PROMPTS if dtype in dtypes else ():
            ids = session.prompt_ids([{"role": "user", "content": text}])
            a, b = greedy(session, ids, 32), greedy(mlx, ids, 32)
            n = prefix_match(a, b)
            matched, total, full[dtype] = matched + n, total + 32, full[dtype] + (n == 32)
            print(f"{dtype} vs MLX, {text!r}: {n}/32 tokens agree before the first difference", flush=True)
            if n < 32:
                print(f"   core ai: {session.tokenizer.decode(a)!r}\n   mlx:     {mlx.tokenizer.decode(b)!r}")
        if total:
            match[dtype] = matched / total
        if dtype == "fp32":
            reference = teacher_forced_logits(session, text_ids)
            source_logits = np.array(mlx.model(mx.array([text_ids]))[0].astype(mx.float32))
            fp32_vs_mlx = float(np.mean(reference.argmax(-1) == source_logits.argmax(-1)))
            print(f"fp32 vs MLX: top-1 agreement over {POSITIONS} teacher-forced positions: {fp32_vs_mlx:.3f}", flush=True)
        engine.unload()

    top1 = {}
    for variant in compressed:
        engine = CoreAIEngine()
        logits = teacher_forced_logits(engine.load(folders[variant]), text_ids)
        engine.unload()
        top1[variant] = float(np.mean(logits.argmax(-1) == reference.argmax(-1)))
        print(f"{variant}: top-1 agreement with Core AI fp32 over {POSITIONS} teacher-forced positions: {top1[variant]:.3f}", flush=True)
    print(
        json.dumps(
            {
                "ratio": round(match["fp32"], 4) if "fp32" in match else None,
                **{f"{d}_match": round(m, 4) for d, m in match.items()},
                **{f"{d}_full_matches": f"{full[d]}/{len(PROMPTS)}" for d in match},
                "fp32_vs_mlx_top1": round(fp32_vs_mlx, 4),
                **{f"{v}_top1": round(top1[v], 4) for v in compressed},
                "conversion_s": {k: round(v, 1) for k, v in seconds.items()},
                "folder_bytes": {k: folder_bytes(v) for k, v in folders.items()},
                "source_bytes": folder_bytes(source),
                "load_average": [round(x, 2) for x in __import__("os").getloadavg()],
                "model": source.name,
            }
        )
    )


if __name__ == "__main__":
    main()
