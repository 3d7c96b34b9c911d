"""What every projection sees on a short calibration text.

The float model runs once over :data:`CALIBRATION_TEXT` (the same torch modules the
converter traces, in float32); a hook on each 1x1 conv records the inputs it sees, one
row per token. :class:`~.palettize.LUTPalettizer` weighs a weight's clustering error by
each input channel's mean square, so columns that multiply large activations are kept
closer, and rounds with error feedback on their Gram matrix (:mod:`.feedback`).
The text is deliberately not the one the fidelity bench scores on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from anechat.engines.coreml.convert.palettize import weight_key
from anechat.engines.modeling.spec import ModelSpec

#: tokens of the calibration text used (error feedback wants more tokens than channels it can)
CALIBRATION_TOKENS = 1024
CALIBRATION_TEXT = (
    "A lighthouse keeper kept a log of every ship that passed: its name, the hour, the weather and "
    "the colour of the sea. Over forty years the entries grew into a history of the coast. Storms "
    "arrived from the west in autumn; fishing boats left before dawn and came back at noon; a ferry "
    "crossed twice a day until the bridge was built. Questions people asked him: How far can the light "
    "be seen? Why does the lamp turn? What happens when the power fails? He answered each one patiently, "
    "wrote the date, and added a short note in the margin. def count(words): return len(words.split()) "
    "# 1, 2, 3 -- 12.5% of 2024 results; Paris, Tokyo, Nairobi, Lima.\n\n"
    "User: Can you help me plan a three-day trip to Lisbon on a small budget?\n"
    "Assistant: Of course. On the first day, walk through Alfama in the morning, when the streets are quiet, "
    "and take tram 28 up to the castle. Lunch at a tasca costs about ten euros. On the second day, visit "
    "Belem: the monastery, the tower and the famous custard tarts. On the third day, take the train to "
    "Sintra, which leaves every twenty minutes from Rossio station.\n"
    "User: What should I pack?\nAssistant: Comfortable shoes, a light jacket for the evening wind, and "
    "sunscreen. Most museums are free on Sunday mornings for residents only, so check the rules first.\n\n"
    "Recipe for a simple loaf: mix 500 g of flour, 350 ml of warm water, 10 g of salt and 7 g of dried "
    "yeast. Knead for ten minutes, let it rise for an hour, shape it, rise again, then bake at 220 C for "
    "35 minutes until the crust sounds hollow when tapped.\n\n"
    "In 1905 Albert Einstein published four papers that changed physics: on the photoelectric effect, on "
    "Brownian motion, on special relativity, and on the equivalence of mass and energy, E = mc^2. The "
    "theory of general relativity followed ten years later and predicted that light bends around the sun, "
    "which Eddington's expedition confirmed during the eclipse of 1919.\n\n"
    "import json\nfrom pathlib import Path\n\ndef load_settings(path: Path) -> dict:\n"
    "    \"\"\"Read the settings file, or return the defaults when it is missing.\"\"\"\n"
    "    if not path.exists():\n        return {\"theme\": \"dark\", \"size\": 14}\n"
    "    with path.open() as f:\n        return json.load(f)\n\n"
    "The committee met on Tuesday to discuss the budget. Revenue rose by 4.2 percent compared with last "
    "year, while costs for energy and transport fell slightly. Two members argued that the surplus should "
    "be saved; the others preferred to invest it in the new library, which would open in the spring. "
    "After a long debate they voted seven to four in favour of the library.\n\n"
    "Why is the sky blue? Sunlight contains every colour, but the molecules of the air scatter short "
    "wavelengths far more than long ones, so blue light reaches our eyes from every direction. At sunset "
    "the light crosses much more air, the blue is scattered away, and the sky turns orange and red.\n\n"
    "Once upon a time, a small fox lived at the edge of a forest. Every winter she crossed the frozen river "
    "to visit her grandmother, carrying a basket of berries she had dried in the summer. One year the ice "
    "cracked under her paws, and a heron, who had watched her for many seasons, showed her a safer path."
)


def calibration_ids(src: Path, limit: int) -> list[int] | None:
    """Token ids of the calibration text with the source's tokenizer (None when it has none)."""
    path = Path(src) / "tokenizer.json"
    if not path.is_file():
        return None
    from tokenizers import Tokenizer

    ids = Tokenizer.from_file(str(path)).encode(CALIBRATION_TEXT).ids
    return ids[:limit] or None


def layer_inputs(spec: ModelSpec, weights: dict, ids: list[int], ranges: list[tuple[int, int]], sizes: list[int]) -> dict[str, np.ndarray]:
    """``weight_key(conv weight) -> inputs (tokens, C_in) float32`` for every projection and LM
    head part (projections that read the same tensor share one array)."""
    import torch

    from anechat.engines.coreml.convert import ane_llama

    dtype = torch.float32
    found: dict[str, np.ndarray] = {}
    t = len(ids)

    def watch(module: torch.nn.Module) -> list:
        handles, seen = [], {}
        for conv in module.modules():
            if isinstance(conv, torch.nn.Conv2d):
                key = weight_key(conv.weight.detach().numpy())

                def hook(_mod, inputs, key=key):
                    x = inputs[0]  # projections that read one tensor (q/k/v, gate/up) see views of the same memory
                    at = (x.data_ptr(), tuple(x.shape), x.stride())
                    if at not in seen:  # (1, C, 1, T) -> (T, C); the tensor is held, so its memory stays its own
                        seen[at] = (x, x.detach().float().reshape(x.shape[1], -1).T.contiguous().numpy())
                    found[key] = seen[at][1]

                handles.append(conv.register_forward_pre_hook(hook))
        return handles

    with torch.no_grad():
        x = ane_llama.Embeddings(spec, weights, dtype)(torch.tensor([ids], dtype=torch.int32))
        mask = torch.triu(torch.full((t, t), float("-inf")), diagonal=1).reshape(1, 1, t, t)
        for start, end in ranges:
            chunk = ane_llama.FFNChunk(spec, weights, start, end, t, dtype)
            chunk.mode = "infer"  # every position out; the last chunk applies the final norm
            handles = watch(chunk)
            x = chunk(x, torch.arange(t, dtype=torch.int32), mask, torch.zeros((1,), dtype=torch.int32))
            for h in handles:
                h.remove()
            del chunk
        head = ane_llama.LMHead(spec, weights, sizes, dtype)
        handles = watch(head)
        head(x)
        for h in handles:
            h.remove()
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
