"""Which LUT recipe keeps the default model closest to its source, simulated without converting.

Each recipe palettizes the source weights exactly as the converter would (same k-means,
same groups, per-channel scales, calibration and error feedback), puts the dequantized
values back, and runs the model in float32 torch over the fixed text of ``--check``:
top-1 agreement with the unquantized source, perplexity, the mean KL divergence of the
next-token distributions (finer than top-1 on 128 positions), and the weights' size beside fp16.
This is what the MIL executor computes for a converted folder, minus fp16 rounding, in
seconds instead of minutes per recipe. Ends with one JSON line.

    python bench/coreml_recipes.py [--model PATH] [--recipes lut6,lut4,recommended,...]
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from coreml_models import source_model  # noqa: E402

from anechat.engines.coreml.convert.options import RECOMMENDED  # noqa: E402

PROJECTIONS = ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")

#: name -> the conversion options it stands for (:class:`CoreMLConvertOptions` fields); the
#: first rows take the converter's improvements away one at a time
RECIPES = {
    "lut6-g16-plain": dict(lut_ffn=6, lut_lmhead=6, lut_ffn_last=6, group_size=16, per_channel_scale=False, calibrate=False, error_feedback=False),
    "lut6-g16": dict(lut_ffn=6, lut_lmhead=6, lut_ffn_last=6, group_size=16, error_feedback=False),
    "lut6-g16-feedback": dict(lut_ffn=6, lut_lmhead=6, lut_ffn_last=6, group_size=16),
    "lut6-g4": dict(lut_ffn=6, lut_lmhead=6, lut_ffn_last=6, group_size=4),
    "lut6-uniform": dict(lut_ffn=6, lut_lmhead=6, lut_ffn_last=6),
    "lut6": dict(lut_ffn=6, lut_lmhead=6),
    "lut4-uniform": dict(lut_ffn=4, lut_lmhead=4, lut_ffn_down=4, lut_ffn_last=4),
    "lut4": dict(lut_ffn=4, lut_lmhead=4),
    "lut4-head6": dict(lut_ffn=4, lut_lmhead=6),
    "recommended": dict(RECOMMENDED),
    "ffn6-head8-emb4": dict(lut_ffn=6, lut_lmhead=8, lut_embeddings=4),
    "ffn6-head8-emb6": dict(lut_ffn=6, lut_lmhead=8, lut_embeddings=6),
    "lut8": dict(lut_ffn=8, lut_lmhead=8, lut_embeddings=8),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="source model folder (default: the built-in default model)")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    args = ap.parse_args()
    from anechat.engines.coreml.convert.calibration import CALIBRATION_TOKENS, calibration_ids, layer_inputs
    from anechat.engines.coreml.convert.check import POSITIONS, eval_ids, fp16_bytes, logits_of, perplexity
    from anechat.engines.coreml.convert.options import CoreMLConvertOptions
    from anechat.engines.coreml.convert.sensitive import projection_roles
    from anechat.engines.coreml.convert.palettize import WEIGHT_THRESHOLD, LUTPalettizer, weight_key
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights

    src = source_model(args.model)
    spec = with_vocab_from_weights(read_spec(src), src)
    weights = load_weights(src)
    head_key = "lm_head.weight" if "lm_head.weight" in weights else "model.embed_tokens.weight"
    ids = eval_ids(_Enc(src))
    reference = logits_of(spec, weights, ids)
    inputs = layer_inputs(spec, weights, calibration_ids(src, CALIBRATION_TOKENS), [(0, spec.num_layers)], [spec.vocab_size])
    fp16 = fp16_bytes(src)
    roles = projection_roles(spec, weights)
    results = {}
    for name in args.recipes.split(","):
        o = CoreMLConvertOptions(**RECIPES[name])
        ffn_bits, head_bits, emb_bits = o.lut_ffn, o.lut_lmhead, o.lut_embeddings
        start = time.perf_counter()
        palettizers: dict[tuple, LUTPalettizer] = {}

        def pal(part: str, bits: int) -> LUTPalettizer:
            group = o.group(part, bits, spec.hidden_size)
            calibrated = o.calibrate and part != "embeddings"  # as the converter: looked-up rows have no inputs
            return palettizers.setdefault((part, bits), LUTPalettizer(bits, group, o.per_channel_scale, inputs if calibrated else None, o.error_feedback))

        def ffn_bits_of(key: str) -> int:
            return o.ffn_bits()[roles.get(weight_key(weights[key]), "rest")]

        q = dict(weights)
        stored = 0.0
        targets = [(k, "ffn", ffn_bits_of(k)) for i in range(spec.num_layers) for p in PROJECTIONS for k in [f"model.layers.{i}.{p}.weight"]]
        targets.append((head_key, "lm_head", head_bits))
        if emb_bits:
            targets.append(("model.embed_tokens.weight#gather", "embeddings", emb_bits))
        for key, part, bits in targets:
            if key.endswith("#gather"):  # the embedding table: a (vocab, hidden) gather weight, no calibration inputs
                w = weights[key[: -len("#gather")]]
                index, lut, scale = pal(part, bits).tables(w.astype(np.float16))
                rows = lut.astype(np.float32)[np.arange(w.shape[0])[:, None] // (w.shape[0] // lut.shape[0]), index]
                q["model.embed_tokens.weight"] = rows * scale.astype(np.float32)[:, None]
                if head_key == "model.embed_tokens.weight" and "lm_head.weight" not in q:
                    q["lm_head.weight"] = weights[head_key]  # the head keeps its own copy
                stored += w.size * bits / 8 + lut.size * 2 + scale.size * 2
                continue
            w = weights[key]
            if w.size <= WEIGHT_THRESHOLD:
                stored += 2 * w.size
                continue
            index, lut, scale = pal(part, bits).tables(w.astype(np.float16).reshape(w.shape[0], -1, 1, 1))
            rows = lut.astype(np.float32)[np.arange(w.shape[0])[:, None] // (w.shape[0] // lut.shape[0]), index.reshape(w.shape[0], -1)]
            if scale is not None:
                rows = rows * scale.astype(np.float32)[:, None]
            q["lm_head.weight" if key == head_key else key] = rows.reshape(w.shape)
            stored += w.size * bits / 8 + lut.size * 2 + (0 if scale is None else scale.size * 2)
        # what stays fp16: embeddings (beside a palettized copy when the head is tied), norms
        target_keys = {k.split("#")[0] for k, _, _ in targets}
        rest = sum(w.size for k, w in weights.items() if k not in target_keys)
        if head_key == "model.embed_tokens.weight" and not emb_bits:
            rest += weights[head_key].size  # the embeddings stay fp16 beside the head's copy
        stored += 2 * rest
        logits = logits_of(spec, q, ids)
        results[name] = {
            "top1": round(float(np.mean(logits.argmax(1) == reference.argmax(1))), 4),
            "perplexity": round(perplexity(logits, ids), 3),
            "kl_vs_fp32": round(kl_divergence(reference, logits), 5),
            "size_vs_fp16": round(stored / fp16, 3),
            "seconds": round(time.perf_counter() - start, 1),
        }
        print(name, results[name], flush=True)
    print(json.dumps({"positions": POSITIONS, "perplexity_source_fp32": round(perplexity(reference, ids), 3), "recipes": results, "model": src.name}))


def kl_divergence(reference: np.ndarray, logits: np.ndarray) -> float:
    """Mean KL(source || variant) of the next-token distributions: a finer figure than top-1."""

    def log_softmax(z):
        z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    p, q = log_softmax(reference), log_softmax(logits)
    return float(np.mean((np.exp(p) * (p - q)).sum(axis=1)))


class _Enc:
    """A tokenizer with ``encode(text) -> ids`` from the source's tokenizer.json."""

    def __init__(self, src):
        from tokenizers import Tokenizer

        self._t = Tokenizer.from_file(str(src / "tokenizer.json"))

    def encode(self, text: str) -> list[int]:
        return self._t.encode(text).ids


if __name__ == "__main__":
    main()
