"""How close a converted folder stays to its float source: ``convert --check`` and ``quality.json``.

The source runs in float32 (the same torch modules the converter traces) over the first
:data:`POSITIONS` tokens of :data:`EVAL_TEXT`; the Core ML folder runs in the engine
(off macOS: the MIL executor) on the same tokens, teacher-forced. Reported: the share of
positions where both pick the same next token (top-1 agreement), the perplexity of each
on the text, and the folder's size beside the size its weights would take in fp16. The
figures are written to ``<folder>/quality.json`` so ``anechat models info`` can show them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable

import numpy as np

QUALITY_FILE = "quality.json"
POSITIONS = 128
#: the fixed text scored by ``--check`` and bench/coreml_fidelity.py (not the calibration text)
EVAL_TEXT = (
    "The Apple Neural Engine is a group of specialised cores for machine learning that sits next to the "
    "CPU and the GPU on Apple silicon. It runs convolutions and matrix products in half precision at a small "
    "fraction of the power a GPU would draw, which makes it attractive for running language models on a "
    "laptop or a phone. To use it, a model has to be converted to Core ML with static shapes, split into "
    "parts small enough for the hardware, and its weights are often compressed with lookup tables of four "
    "or six bits. Whether the compressed model still predicts the same next words as the original is what "
    "this benchmark measures, one position at a time, on an ordinary paragraph of English prose like this one."
)


def eval_ids(tokenizer) -> list[int]:
    ids = list(tokenizer.encode(EVAL_TEXT))[:POSITIONS]
    return (ids * (POSITIONS // max(len(ids), 1) + 1))[:POSITIONS]


def source_logits(src: Path, ids: list[int]) -> np.ndarray:
    """(len(ids), vocab) float32 logits of the float source, every position at once."""
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights

    return logits_of(with_vocab_from_weights(read_spec(src), src), load_weights(src), ids)


def logits_of(spec, weights: dict, ids: list[int]) -> np.ndarray:
    """(len(ids), vocab) float32 logits of the llama ``weights`` in float32 torch."""
    import torch

    from anechat.engines.coreml.convert import ane_llama

    t, dtype = len(ids), torch.float32
    with torch.no_grad():
        x = ane_llama.Embeddings(spec, weights, dtype)(torch.tensor([ids], dtype=torch.int32))
        chunk = ane_llama.FFNChunk(spec, weights, 0, spec.num_layers, t, dtype)
        chunk.mode = "infer"
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1).reshape(1, 1, t, t)
        x = chunk(x, torch.arange(t, dtype=torch.int32), mask, torch.zeros((1,), dtype=torch.int32))
        head = ane_llama.LMHead(spec, weights, [spec.vocab_size], dtype)
        return head(x)[0][0].numpy().astype(np.float32)


def teacher_forced_logits(session, ids: list[int]) -> np.ndarray:
    forward = session.forward
    forward.reset()
    rows = [np.asarray(forward.infer(token, pos), dtype=np.float32).reshape(-1) for pos, token in enumerate(ids)]
    session.reset()
    return np.stack(rows)


def perplexity(logits: np.ndarray, ids: list[int]) -> float:
    z = logits[:-1].astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    nll = -logp[np.arange(len(ids) - 1), ids[1:]]
    return float(math.exp(nll.mean()))


def folder_bytes(folder: Path) -> int:
    """Bytes of the model's own files (the load cache is left out)."""
    from anechat.engines.coreml.mil.plan_cache import CACHE_DIR

    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file() and CACHE_DIR not in p.relative_to(folder).parts)


def fp16_bytes(src: Path) -> int:
    """What the converted parts' weights take in fp16: every source weight, and the LM head
    again when it is tied to the embeddings (the Core ML folder stores both)."""
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights

    spec = with_vocab_from_weights(read_spec(src), src)
    weights = load_weights(src)
    total = sum(int(np.prod(w.shape)) for w in weights.values())
    if "lm_head.weight" not in weights:
        total += spec.vocab_size * spec.hidden_size
    return 2 * total


def check_conversion(folder: Path, src: Path, progress: Callable[[str, "float | None"], None] | None = None) -> dict:
    """Measure ``folder`` against ``src``, write ``quality.json`` into it, return the figures."""
    from anechat.engines.coreml.convert.calibration import activation_peaks, calibration_ids, fp16_warnings
    from anechat.engines.coreml.convert.source import load_weights, read_spec, with_vocab_from_weights
    from anechat.engines.coreml.engine import CoreMLEngine

    def say(message: str, fraction: float) -> None:
        if progress is not None:
            progress(message, fraction)

    folder, src = Path(folder), Path(src)
    say("checking: loading the converted model", 0.0)
    session = CoreMLEngine(fp16_activations=True).load(folder)
    ids = eval_ids(session.tokenizer)[: session.forward.context_length]
    say(f"checking: the converted model on {len(ids)} positions", 0.2)
    ours = teacher_forced_logits(session, ids)
    runtime = session.info.extra.get("runtime", "")
    del session
    say("checking: the float32 source on the same positions", 0.8)
    spec, weights = with_vocab_from_weights(read_spec(src), src), load_weights(src)
    reference = logits_of(spec, weights, ids)
    say("checking: fp16 preflight (largest activation per layer on the calibration text)", 0.9)
    from anechat.engines.modeling.fp16 import fp16_ready

    calibration = calibration_ids(src, POSITIONS) or ids
    peaks = activation_peaks(fp16_ready(spec, weights, calibration), weights, calibration)  # as the conversion carries them
    size, fp16 = folder_bytes(folder), fp16_bytes(src)
    figures = {
        "positions": len(ids),
        "top1_agreement": round(float(np.mean(ours.argmax(axis=1) == reference.argmax(axis=1))), 4),
        "perplexity": round(perplexity(ours, ids), 3),
        "perplexity_source_fp32": round(perplexity(reference, ids), 3),
        "size_bytes": size,
        "fp16_size_bytes": fp16,
        "size_vs_fp16": round(size / fp16, 3),
        "runtime": runtime,
        "fp16_peak_activation": [round(p, 1) for p in peaks],
        "fp16_warnings": fp16_warnings(peaks),
    }
    (folder / QUALITY_FILE).write_text(json.dumps(figures, indent=1) + "\n", encoding="utf-8")
    say("checked", 1.0)
    return figures


def read_quality(folder: Path) -> dict | None:
    """The figures a check wrote into ``folder``, or None (none, or unreadable)."""
    try:
        data = json.loads((Path(folder) / QUALITY_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def quality_lines(figures: dict) -> list[tuple[str, str]]:
    """(label, value) rows for people: ``models info`` and ``convert --check`` print these."""

    def num(key: str, fmt: str) -> str | None:
        value = figures.get(key)
        return fmt.format(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    rows = []
    top1, n = num("top1_agreement", "{:.1%}"), num("positions", "{:d}")
    if top1:
        rows.append(("top-1 agreement", f"{top1} of {n or '?'} positions vs the fp32 source"))
    ppl, ref = num("perplexity", "{:.2f}"), num("perplexity_source_fp32", "{:.2f}")
    if ppl:
        rows.append(("perplexity", f"{ppl} (fp32 source {ref or '?'})"))
    share = num("size_vs_fp16", "{:.0%}")
    if share:
        rows.append(("size vs fp16", share))
    peaks = figures.get("fp16_peak_activation")
    if isinstance(peaks, list) and peaks and all(isinstance(p, (int, float)) and not isinstance(p, bool) for p in peaks):
        from anechat.engines.coreml.convert.calibration import FP16_MAX, fp16_warnings

        top = max(range(len(peaks)), key=lambda i: peaks[i])
        rows.append(("fp16 preflight", f"largest activation {peaks[top]:,.0f} (layer {top}; fp16 holds up to {FP16_MAX:,.0f})"))
        rows += [("fp16 warning", w) for w in fp16_warnings(peaks)]  # rebuilt from numbers: no text from the file is shown
    return rows
