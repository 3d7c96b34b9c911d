"""Which LUT recipe keeps the default model closest to its source, simulated without converting.

Each recipe palettizes the source weights exactly as the converter would (same k-means,
same groups, same per-channel scales and calibration importance), puts the dequantized
values back, and runs the model in float32 torch over the fixed text of ``--check``:
top-1 agreement with the unquantized source, perplexity, and the weights' size beside fp16.
This is what the MIL executor computes for a converted folder, minus fp16 rounding, in
seconds instead of minutes per recipe. Ends with one JSON line.

    python bench/coreml_recipes.py [--model PATH] [--recipes lut6,lut4,...]
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from coreml_models import source_model  # noqa: E402

PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")

#: name -> (FFN bits, LM head bits, per-channel scale, calibrated, {layer: bits} overrides)
RECIPES = {
    "lut6-plain": (6, 6, False, False, {}),
    "lut6-scaled": (6, 6, True, False, {}),
    "lut6": (6, 6, True, True, {}),
    "lut4-plain": (4, 4, False, False, {}),
    "lut4": (4, 4, True, True, {}),
    "lut4-head6": (4, 6, True, True, {}),
    "lut4-head8-edges8": (4, 8, True, True, {"first": 8, "last": 8}),
    "lut6-head8": (6, 8, True, True, {}),
    "lut8": (8, 8, True, True, {}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--group", type=int, default=16, help="output channels per LUT")
    ap.add_argument("--no-feedback", action="store_true", help="nearest rounding instead of error feedback")
    args = ap.parse_args()
    from anechat.engines.coreml.convert.calibration import calibration_ids, layer_inputs
    from anechat.engines.coreml.convert.calibration import CALIBRATION_TOKENS
    from anechat.engines.coreml.convert.check import POSITIONS, eval_ids, fp16_bytes, logits_of, perplexity
    from anechat.engines.coreml.convert.palettize import WEIGHT_THRESHOLD, LUTPalettizer
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights

    src = source_model(args.model)
    spec = with_vocab_from_weights(read_spec(src), src)
    weights = load_weights(src)
    head_key = "lm_head.weight" if "lm_head.weight" in weights else "model.embed_tokens.weight"
    ids = eval_ids(_Enc(src))
    reference = logits_of(spec, weights, ids)
    inputs = layer_inputs(spec, weights, calibration_ids(src, CALIBRATION_TOKENS), [(0, spec.num_layers)], [spec.vocab_size])
    fp16 = fp16_bytes(src)
    results = {}
    for name in args.recipes.split(","):
        ffn_bits, head_bits, scaled, calibrated, edges = RECIPES[name]
        start = time.perf_counter()
        palettizers: dict[int, LUTPalettizer] = {}

        def pal(bits: int) -> LUTPalettizer:
            return palettizers.setdefault(bits, LUTPalettizer(bits, args.group, scaled, inputs if calibrated else None, not args.no_feedback))

        q = dict(weights)
        stored = 0.0
        layer_bits = {i: ffn_bits for i in range(spec.num_layers)}
        layer_bits[0] = edges.get("first", ffn_bits)
        layer_bits[spec.num_layers - 1] = edges.get("last", ffn_bits)
        targets = [(f"model.layers.{i}.{p}.weight", layer_bits[i]) for i in range(spec.num_layers) for p in PROJECTIONS]
        targets.append((head_key, head_bits))
        for key, bits in targets:
            w = weights[key]
            if w.size <= WEIGHT_THRESHOLD:
                stored += 2 * w.size
                continue
            index, lut, scale = pal(bits).tables(w.astype(np.float16).reshape(w.shape[0], -1, 1, 1))
            rows = lut.astype(np.float32)[np.arange(w.shape[0])[:, None] // (w.shape[0] // lut.shape[0]), index.reshape(w.shape[0], -1)]
            if scale is not None:
                rows = rows * scale.astype(np.float32)[:, None]
            q["lm_head.weight" if key == head_key else key] = rows.reshape(w.shape)
            stored += w.size * bits / 8 + lut.size * 2 + (0 if scale is None else scale.size * 2)
        # what stays fp16: embeddings (beside a palettized copy when the head is tied), norms
        target_keys = {k for k, _ in targets}
        rest = sum(w.size for k, w in weights.items() if k not in target_keys)
        if head_key == "model.embed_tokens.weight":
            rest += weights[head_key].size
        stored += 2 * rest
        logits = logits_of(spec, q, ids)
        results[name] = {
            "top1": round(float(np.mean(logits.argmax(1) == reference.argmax(1))), 4),
            "perplexity": round(perplexity(logits, ids), 3),
            "size_vs_fp16": round(stored / fp16, 3),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(name, results[name], flush=True)
    print(json.dumps({"positions": POSITIONS, "perplexity_source_fp32": round(perplexity(reference, ids), 3), "recipes": results, "model": src.name}))


class _Enc:
    """A tokenizer with ``encode(text) -> ids`` from the source's tokenizer.json."""

    def __init__(self, src):
        from tokenizers import Tokenizer

        self._t = Tokenizer.from_file(str(src / "tokenizer.json"))

    def encode(self, text: str) -> list[int]:
        return self._t.encode(text).ids


if __name__ == "__main__":
    main()
