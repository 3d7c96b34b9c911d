"""How faithful the Core ML conversions of the default model are to the source.

Converts SmolLM2-135M-Instruct to Core ML three ways — fp16, LUT6 (FFN + LM head) and
LUT4 (FFN + LM head) — caching each under the models dir, then measures:

- fp16: greedy tokens from the Core ML engine vs the MLX engine (fp32 source), the
  first 32 tokens of 3 chat prompts (stop tokens ignored); ``fp16_match`` is the
  share of those 96 tokens that agree before the first divergence;
- LUT6 / LUT4: top-1 agreement with the source over 128 teacher-forced positions of
  a fixed English text (both models see the same tokens; argmax compared at each).

Off macOS the Core ML side runs in the MIL executor. Ends with one JSON line:
{"ratio": <lut6_top1>, "fp16_match": ..., "lut6_top1": ..., "lut4_top1": ..., conversion
times and folder sizes}.

    python bench/coreml_fidelity.py [--model PATH]
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402

from coreml_models import coreml_variant, folder_bytes, source_model  # noqa: E402

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain in one sentence why the sky is blue.",
]

TEXT = (
    "The Apple Neural Engine is a group of specialised cores for machine learning that sits next to the "
    "CPU and the GPU on Apple silicon. It runs convolutions and matrix products in half precision at a small "
    "fraction of the power a GPU would draw, which makes it attractive for running language models on a "
    "laptop or a phone. To use it, a model has to be converted to Core ML with static shapes, split into "
    "parts small enough for the hardware, and its weights are often compressed with lookup tables of four "
    "or six bits. Whether the compressed model still predicts the same next words as the original is what "
    "this benchmark measures, one position at a time, on an ordinary paragraph of English prose like this one."
)
POSITIONS = 128


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


def top1_agreement(coreml_session, reference_logits, ids: list[int]) -> float:
    import numpy as np

    forward = coreml_session.forward
    forward.reset()
    agree = 0
    for pos, token in enumerate(ids):
        agree += int(np.argmax(forward.infer(token, pos)) == np.argmax(reference_logits[pos]))
    coreml_session.reset()
    return agree / len(ids)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    args = ap.parse_args()
    import mlx.core as mx
    import numpy as np

    from anechat.engines.coreml.engine import CoreMLEngine
    from anechat.engines.mlx.engine import MLXEngine

    source = source_model(args.model)
    folders, seconds = {}, {}
    for variant in ("fp16", "lut6", "lut4"):
        folders[variant], seconds[variant], fresh = coreml_variant(source, variant)
        print(f"{variant}: {folders[variant].name} ({folder_bytes(folders[variant]) / 1e6:.0f} MB, conversion {seconds[variant]:.0f} s{'' if fresh else ', cached'})")

    mlx_engine = MLXEngine()
    mlx = mlx_engine.load(source)
    fp16 = CoreMLEngine().load(folders["fp16"])
    print(f"Core ML runtime: {fp16.info.extra['runtime']}")
    matched = total = full = 0
    for text in PROMPTS:
        ids = fp16.prompt_ids([{"role": "user", "content": text}])
        a, b = greedy(fp16, ids, 32), greedy(mlx, ids, 32)
        n = prefix_match(a, b)
        matched, total, full = matched + n, total + 32, full + (n == 32)
        print(f"fp16 vs MLX, {text!r}: {n}/32 tokens agree before the first difference")
        if n < 32:
            print(f"   core ml: {fp16.tokenizer.decode(a)!r}\n   mlx:     {mlx.tokenizer.decode(b)!r}")
    fp16_match = matched / total
    del fp16

    ids = mlx.tokenizer.encode(TEXT)[:POSITIONS]
    if len(ids) < POSITIONS:
        ids = (ids * (POSITIONS // len(ids) + 1))[:POSITIONS]
    reference = np.array(mlx.model(mx.array([ids]))[0].astype(mx.float32))
    top1 = {}
    for variant in ("lut6", "lut4"):
        session = CoreMLEngine().load(folders[variant])
        top1[variant] = top1_agreement(session, reference, ids)
        print(f"{variant}: top-1 agreement with the source over {POSITIONS} teacher-forced positions: {top1[variant]:.3f}")
        del session
    print(
        json.dumps(
            {
                "ratio": round(top1["lut6"], 4),
                "fp16_match": round(fp16_match, 4),
                "fp16_full_matches": f"{full}/{len(PROMPTS)}",
                "lut6_top1": round(top1["lut6"], 4),
                "lut4_top1": round(top1["lut4"], 4),
                "conversion_s": {k: round(v, 1) for k, v in seconds.items()},
                "folder_bytes": {k: folder_bytes(v) for k, v in folders.items()},
                "source_bytes": folder_bytes(source),
                "model": source.name,
            }
        )
    )


if __name__ == "__main__":
    main()
