"""``convert_to_coreml``: a source folder (llama, qwen2, qwen3, gemma3_text) in, an ANEMLL-layout Core ML folder out.

Everything is written into a hidden temp folder next to ``out`` and renamed at the end, so
a failed or interrupted conversion never leaves a folder that looks like a model.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Callable

from anechat.engines.errors import BackendUnavailable, InvalidParameter
from anechat.engines.files import atomic_folder

from anechat.engines.coreml.anemll import write_meta
from anechat.engines.coreml.anemll.names import chunk_stem, embeddings_stem, ffn_stem, lm_head_stem
from anechat.engines.coreml.convert.output_folder import copy_tokenizer, meta_for
from anechat.engines.coreml.convert.options import CoreMLConvertOptions
from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights
from anechat.engines.modeling.spec import ModelSpec

ProgressCallback = Callable[[str, "float | None"], None]


class _Steps:
    """Counts steps and reports ``(message, fraction done before this step)``."""

    def __init__(self, total: int, callback: ProgressCallback | None) -> None:
        self.total, self.done, self.callback = total, 0, callback

    def __call__(self, message: str) -> None:
        if self.callback is not None:
            self.callback(message, min(self.done / self.total, 1.0))
        self.done += 1

    def finish(self, message: str) -> None:
        if self.callback is not None:
            self.callback(message, 1.0)


def chunk_ranges(num_layers: int, num_chunks: int) -> list[tuple[int, int]]:
    """Layer ranges ``[start, end)`` of each chunk, sizes differing by at most one."""
    bounds = [round(i * num_layers / num_chunks) for i in range(num_chunks + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _count_steps(o: CoreMLConvertOptions) -> int:
    def part(lut):  # build, trace, convert, [palettize], save
        return 4 + (1 if lut else 0)

    calibration = 1 if o.calibrate and (o.lut_embeddings or o.lut_ffn or o.lut_lmhead) else 0
    return 3 + calibration + part(o.lut_embeddings) + o.num_chunks * part(o.lut_ffn) + part(o.lut_lmhead) + 1


def _require_toolchain() -> None:
    try:
        import coremltools  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailable(
            f"the Core ML converter needs {exc.name}", hint="install the Core ML extra: pip install 'anechat[coreml]'"
        ) from exc


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InvalidParameter(f"{out} already exists", hint="choose a new folder or delete the old one first")


def convert_to_coreml(
    src: Path,
    out: Path,
    options: CoreMLConvertOptions | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Convert the float model (any family in engines.modeling.spec) in ``src`` to Core ML parts in ``out``; returns ``out``."""
    options = options or CoreMLConvertOptions()
    src, out = Path(src).expanduser(), Path(out).expanduser()
    spec = with_vocab_from_weights(read_spec(src), src)
    options.check(spec)
    _check_out(out)
    _require_toolchain()
    out.parent.mkdir(parents=True, exist_ok=True)
    steps = _Steps(_count_steps(options), progress)
    with atomic_folder(out) as work:  # a failed or interrupted conversion leaves nothing behind
        steps(f"loading weights from {src.name}")
        weights = load_weights(src)
        steps("measuring the residual stream's fp16 headroom on the calibration text")
        spec = _fp16_ready(spec, weights, src, options)
        _write_parts(spec, weights, options, work, steps, _palettizers(spec, weights, src, options, steps))
        del weights
        steps("writing meta.yaml and tokenizer files")
        write_meta(work, meta_for(spec, options, options.lm_head_sizes(spec.vocab_size)))
        copy_tokenizer(src, work)
    steps.finish(f"done: {out}")
    return out


def _fp16_ready(spec: ModelSpec, weights: dict, src: Path, o: CoreMLConvertOptions) -> ModelSpec:
    """The spec with the residual scale that keeps its stream inside fp16 on the calibration text."""
    from anechat.engines.coreml.convert.calibration import calibration_ids
    from anechat.engines.modeling.fp16 import fp16_ready

    return fp16_ready(spec, weights, calibration_ids(src, min(128, o.context_length)))


def _palettizers(spec: ModelSpec, weights: dict, src: Path, o: CoreMLConvertOptions, steps: _Steps) -> dict:
    """part -> its :class:`LUTPalettizer` (or None for fp16), all sharing the calibration."""
    from anechat.engines.coreml.convert.calibration import CALIBRATION_TOKENS, calibration_ids, layer_inputs
    from anechat.engines.coreml.convert.palettize import LUTPalettizer, MixedLUT

    bits = {"embeddings": o.lut_embeddings, "ffn": o.lut_ffn, "lm_head": o.lut_lmhead}
    if not any(bits.values()):
        return {}
    inputs = None
    ids = calibration_ids(src, CALIBRATION_TOKENS) if o.calibrate else None
    if ids:
        steps(f"recording each projection's inputs on a {len(ids)}-token calibration text")
        ranges = chunk_ranges(spec.num_layers, o.num_chunks)
        inputs = layer_inputs(spec, weights, ids, ranges, o.lm_head_sizes(spec.vocab_size))

    def palettizer(part: str, b: int) -> LUTPalettizer:  # the embeddings are looked up: no inputs weigh them
        return LUTPalettizer(b, o.group(part, b, spec.hidden_size), o.per_channel_scale, None if part == "embeddings" else inputs, o.error_feedback)

    luts = {part: palettizer(part, b) if b else None for part, b in bits.items()}
    ffn = o.ffn_bits()
    if any(b != o.lut_ffn for b in ffn.values()):
        from anechat.engines.coreml.convert.sensitive import projection_roles

        by_bits = {o.lut_ffn: luts["ffn"]}
        for b in ffn.values():
            if b not in by_bits:
                by_bits[b] = palettizer("ffn", b)
        by_role = {role: by_bits[b] for role, b in ffn.items() if role != "rest"}
        luts["ffn"] = MixedLUT(luts["ffn"], by_role, projection_roles(spec, weights))
    return luts


def _palettize(mlmodel, palettizer, op_type: str, label: str, steps: _Steps):
    if palettizer is not None:
        steps(f"{label}: palettizing ({palettizer.label})")
        palettizer.apply(mlmodel._mil_program, op_type)
    return mlmodel


def _save(mlmodel, palettized: bool, path: Path) -> None:
    from anechat.engines.coreml.convert import lean, parts

    if not palettized:
        mlmodel.save(str(path))
        return
    with parts.quiet():
        lean.save_program(mlmodel, str(path))


def _write_parts(spec: ModelSpec, weights: dict, o: CoreMLConvertOptions, work: Path, steps: _Steps, luts: dict) -> None:
    from anechat.engines.coreml.convert import ane_llama, parts  # torch and coremltools: imported only when converting

    ctx, batch = o.context_length, o.batch_size

    steps("embeddings: building")
    module = ane_llama.Embeddings(spec, weights, parts.TRACE_DTYPE)
    steps("embeddings: tracing")
    traced = parts.trace_embeddings(module, batch)
    steps("embeddings: converting")
    mlmodel = _palettize(parts.convert_embeddings(traced, batch), luts.get("embeddings"), "gather", "embeddings", steps)
    steps("embeddings: saving")
    _save(mlmodel, bool(o.lut_embeddings), work / f"{embeddings_stem(o.prefix, o.lut_embeddings)}.mlpackage")
    del module, traced, mlmodel

    ranges = chunk_ranges(spec.num_layers, o.num_chunks)
    for index, (start, end) in enumerate(ranges, start=1):
        label = f"FFN chunk {index}/{len(ranges)}"
        steps(f"{label}: building layers {start}-{end - 1}")
        module = ane_llama.FFNChunk(spec, weights, start, end, ctx, parts.TRACE_DTYPE)
        steps(f"{label}: tracing")
        traced = parts.trace_ffn(module, spec, batch, ctx)
        steps(f"{label}: converting (1 to {batch} positions)")
        mlmodel = _palettize(parts.convert_ffn(traced, spec, batch, ctx), luts.get("ffn"), "conv", label, steps)
        steps(f"{label}: saving infer + prefill as one package")
        parts.save_ffn(mlmodel, spec, batch, ctx, work / f"{chunk_stem(ffn_stem(o.prefix, o.lut_ffn), index, len(ranges))}.mlpackage")
        del traced, mlmodel, module
        gc.collect()

    sizes = o.lm_head_sizes(spec.vocab_size)
    steps(f"LM head: building ({len(sizes)} outputs)")
    module = ane_llama.LMHead(spec, weights, sizes, parts.TRACE_DTYPE)
    steps("LM head: tracing")
    traced = parts.trace_lm_head(module, spec)
    steps("LM head: converting")
    mlmodel = _palettize(parts.convert_lm_head(traced, spec, len(sizes)), luts.get("lm_head"), "conv", "LM head", steps)
    steps("LM head: saving")
    _save(mlmodel, bool(o.lut_lmhead), work / f"{lm_head_stem(o.prefix, o.lut_lmhead)}.mlpackage")
