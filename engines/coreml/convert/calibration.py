"""What every projection sees on a calibration text.

The float model runs over the calibration text (:data:`CALIBRATION_FILE`, the same torch
modules the converter traces, in float32), in segments; a hook on each 1x1 conv adds the
inputs it sees to their Gram matrix (:class:`InputGram`). :class:`~.palettize.LUTPalettizer`
weighs a weight's clustering error by each input channel's mean square, so columns that
multiply large activations are kept closer, and rounds with error feedback on the Gram
matrix (:mod:`.feedback`). The text is deliberately not the one the fidelity bench scores on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anechat.engines.coreml.convert.palettize import weight_key
from anechat.engines.modeling.spec import ModelSpec

#: tokens of the calibration text used: error feedback wants many more tokens than a layer has
#: input channels (1536 for SmolLM2's down projections). SmolLM2-135M, FFN at 6 bits
#: (bench/coreml_recipes.py): KL to fp32 0.0052 with 768 tokens, 0.0048 with 2048, 0.0041 with 4096
CALIBRATION_TOKENS = 4096
#: the calibration text runs as independent segments of this many tokens (attention over the
#: whole text at once would hold a tokens x tokens matrix per head)
SEGMENT_TOKENS = 512
#: the text: a handwritten page of mixed prose, dialogue, code and figures, then the answers
#: SmolLM2-135M-Instruct wrote to the sixteen varied requests it shows (mlx-lm, its chat
#: template, temperature 0.7, top-p 0.95, seed 0, up to 300 tokens each): text a model writes
#: itself calibrates it without a dataset (the idea of LLM-QAT's data-free calibration).
#: Simulated, FFN at 6 bits, 4,096 tokens in one sequence: KL 0.0039 with this text, 0.0042 with
#: the page and then the GPL (legal English)
CALIBRATION_FILE = Path(__file__).with_name("calibration.txt")


def calibration_ids(src: Path, limit: int) -> list[int] | None:
    """Token ids of the calibration text with the source's tokenizer (None when it has none)."""
    path = Path(src) / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(path)).encode(CALIBRATION_FILE.read_text(encoding="utf-8")).ids
    return ids[:limit] or None


class InputGram:
    """``X^T X`` of the inputs a projection saw (rows: tokens, columns: its input channels),
    summed over the calibration segments: all that :class:`~.palettize.LUTPalettizer` needs of
    them (their mean square per channel, and the Gram matrix of error feedback)."""

    def __init__(self, channels: int) -> None:
        self.channels = channels
        self.tokens = 0
        self._sum = np.zeros((channels, channels), dtype=np.float32)  # a few segments: float32 sums suffice

    def add(self, x) -> None:
        """Add the inputs ``x`` (tokens, channels), a float32 torch tensor."""
        self._sum += (x.T @ x).numpy()
        self.tokens += int(x.shape[0])

    def mean(self) -> np.ndarray:
        """``X^T X / tokens``, float64."""
        return self._sum.astype(np.float64) / max(self.tokens, 1)


def layer_inputs(spec: ModelSpec, weights: dict, ids: list[int], ranges: list[tuple[int, int]], sizes: list[int]) -> dict[str, InputGram]:
    """``weight_key(conv weight) -> InputGram`` for every projection and LM head part, over
    ``ids`` in segments of :data:`SEGMENT_TOKENS`. Projections that read the same tensor
    (q/k/v, gate/up, the head's parts) share one."""
    import torch

    from anechat.engines.coreml.convert import ane_llama

    dtype = torch.float32
    found: dict[str, InputGram] = {}
    seen: dict = {}  # this segment's recorded tensors: (pointer, shape, strides) -> (tensor, InputGram)

    def record(key: str, x: torch.Tensor) -> None:
        at = (x.data_ptr(), tuple(x.shape), x.stride())  # q/k/v (gate/up) see views of the same memory
        if at not in seen:  # the tensor is held, so its memory stays its own
            gram = found.get(key) or InputGram(int(x.shape[1]))
            gram.add(x.detach().float().reshape(x.shape[1], -1).T)  # (1, C, 1, T) -> (T, C)
            seen[at] = (x, gram)
        found[key] = seen[at][1]

    def watched(module: torch.nn.Module) -> list:
        return [
            conv.register_forward_pre_hook(lambda _mod, inputs, key=weight_key(conv.weight.detach().numpy()): record(key, inputs[0]))
            for conv in module.modules()
            if isinstance(conv, torch.nn.Conv2d)
        ]

    segments = [ids[a : a + SEGMENT_TOKENS] for a in range(0, len(ids), SEGMENT_TOKENS)]
    with torch.no_grad():
        embeddings = ane_llama.Embeddings(spec, weights, dtype)
        states = [embeddings(torch.tensor([segment], dtype=torch.int32)) for segment in segments]
        del embeddings
        for start, end in ranges:
            chunks: dict[int, tuple] = {}  # segment length -> (chunk, its hooks): built once per length
            for n, segment in enumerate(segments):
                t = len(segment)
                if t not in chunks:
                    chunk = ane_llama.FFNChunk(spec, weights, start, end, t, dtype)
                    chunk.mode = "infer"  # every position out; the last chunk applies the final norm
                    chunks[t] = (chunk, watched(chunk))
                mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1).reshape(1, 1, t, t)
                seen.clear()
                states[n] = chunks[t][0](states[n], torch.arange(t, dtype=torch.int32), mask, torch.zeros((1,), dtype=torch.int32))
            for chunk, hooks in chunks.values():
                for h in hooks:
                    h.remove()
            del chunks
        head = ane_llama.LMHead(spec, weights, sizes, dtype)  # its parts read the normed state: recorded, not run
        keys = [weight_key(conv.weight.detach().numpy()) for conv in head.heads]
        del head
        for state in states:
            seen.clear()
            x = ane_llama.to_channels(state)
            for key in keys:
                record(key, x)
    return found


#: the largest finite fp16 value; activations beyond it become inf on the Neural Engine
FP16_MAX = 65504.0
#: warn when an activation comes within this share of the limit
FP16_WARN_SHARE = 0.25


def activation_peaks(spec: ModelSpec, weights: dict, ids: list[int]) -> list[float]:
    """The largest |activation| inside each decoder layer (every submodule's output and the
    layer's own) over ``ids``, computed in float32: the fp16 preflight."""
    import torch

    from anechat.engines.coreml.convert import ane_llama

    t, dtype = len(ids), torch.float32
    peaks: list[float] = []
    with torch.no_grad():
        x = ane_llama.Embeddings(spec, weights, dtype)(torch.tensor([ids], dtype=torch.int32))
        chunk = ane_llama.FFNChunk(spec, weights, 0, spec.num_layers, t, dtype)
        chunk.mode = "infer"
        handles = []
        for i, layer in enumerate(chunk.layers):
            peaks.append(float(x.abs().max()) if i == 0 else 0.0)
            for module in layer.modules():

                def hook(_mod, _inputs, output, i=i):
                    for o in output if isinstance(output, tuple) else (output,):
                        if isinstance(o, torch.Tensor) and o.is_floating_point():
                            peaks[i] = max(peaks[i], float(o.abs().max()))

                handles.append(module.register_forward_hook(hook))
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1).reshape(1, 1, t, t)
        chunk(x, torch.arange(t, dtype=torch.int32), mask, torch.zeros((1,), dtype=torch.int32))
        for h in handles:
            h.remove()
    return peaks


def fp16_warnings(peaks: list[float]) -> list[str]:
    return [
        f"layer {i}: activations reach {p:,.0f} ({p / FP16_MAX:.0%} of the fp16 limit {FP16_MAX:,.0f})"
        for i, p in enumerate(peaks)
        if p >= FP16_WARN_SHARE * FP16_MAX
    ]
