"""GGUF tensors -> Hugging Face tensors in one float32 model.safetensors.

* names: llama.cpp's ``blk.N.attn_q.weight`` -> ``model.layers.N.self_attn.q_proj.weight`` and so
  on, per architecture (:mod:`anechat.convert.gguf.architectures`);
* values: every tensor dequantized to float32 (``gguf.quants.dequantize``: numpy, vectorised over
  blocks, for every llama.cpp type up to the K-quants Q4_K_M mixes: Q4_K, Q5_0, Q6_K, Q8_0 ...);
* q/k rows (llama): llama.cpp's converter reorders the rows of ``q_proj``/``k_proj`` of each
  head from Hugging Face's rotate-half rope layout to interleaved pairs
  (``reshape(n_head, 2, head_dim // 2, ...).swapaxes(1, 2)``); :func:`unpermute_rows`
  is its exact inverse;
* norms (Gemma): llama.cpp stores ``1 + w``; the architecture's ``norm_shift`` is taken off again;
* file: the safetensors header is computed up front and the tensors are streamed
  to disk one at a time, so memory stays at one dequantized tensor.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from anechat.engines.errors import ModelFormatError

from anechat.convert.gguf.architectures import Architecture
from anechat.convert.gguf.reader import GGUFFile

_GLOBAL = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
}
_LAYER_NAME = re.compile(r"^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$")
#: tensors that are not weights of the HF model: rope_freqs goes into config.json, attn_rot_embd is obsolete
_NOT_WEIGHTS = re.compile(r"^(rope_freqs\.weight|blk\.\d+\.attn_rot_embd\.weight)$")


def unpermute_rows(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's rope row permutation of a q or k projection (weight or bias)."""
    rows = w.shape[0]
    if rows % (2 * n_head):
        raise ModelFormatError(f"a q/k projection has {rows} rows, not a multiple of 2 x {n_head} heads")
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_name(name: str, arch: Architecture) -> str | None:
    """The Hugging Face name of a llama.cpp tensor; None for tensors that are not model weights."""
    if name in _GLOBAL:
        return _GLOBAL[name]
    if _NOT_WEIGHTS.match(name):
        return None
    match = _LAYER_NAME.match(name)
    if match and match.group(2) in arch.layer_names:
        layer, part, kind = match.groups()
        return f"model.layers.{layer}.{arch.layer_names[part]}.{kind}"
    raise ModelFormatError(
        f"unexpected tensor '{name}' for a {arch.name} model",
        hint="this GGUF holds a variant (e.g. mixture of experts) that anechat cannot import",
    )


@dataclass(frozen=True)
class TensorPlan:
    gguf_name: str
    hf_name: str
    shape: tuple[int, ...]
    unpermute_heads: int | None  # heads to undo the rope permutation over, or None
    shift: float = 0.0  # taken off every value (llama.cpp's 1 + w for Gemma's norms)

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * 4


def plan_tensors(gguf: GGUFFile, config: dict, arch: Architecture) -> list[TensorPlan]:
    """Which tensors to write, checked complete before anything is written."""
    heads = {"attn_q": config["num_attention_heads"], "attn_k": config["num_key_value_heads"]} if arch.unpermute_qk else {}
    plans = []
    for name in gguf.tensors:
        target = hf_name(name, arch)
        if target is None:
            continue
        part = name.split(".")[2] if name.startswith("blk.") else None
        shift = arch.norm_shift if name.endswith("norm.weight") else 0.0
        plans.append(TensorPlan(name, target, gguf.tensor_shape(name), heads.get(part), shift))
    have = {p.hf_name for p in plans}
    expected = {"model.embed_tokens.weight", "model.norm.weight"}
    if not config["tie_word_embeddings"]:
        expected.add("lm_head.weight")
    for i in range(config["num_hidden_layers"]):
        expected.update(f"model.layers.{i}.{part}.weight" for part in arch.layer_names.values())
    missing = sorted(expected - have)
    if missing:
        raise ModelFormatError(
            f"{gguf.path.name} lacks {len(missing)} {arch.name} tensor(s), e.g. {missing[0]}",
            hint="the file may be truncated",
        )
    return plans


def dequantized(gguf: GGUFFile, plan: TensorPlan) -> np.ndarray:
    from gguf.quants import dequantize

    tensor = gguf.tensors[plan.gguf_name]
    try:
        values = dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError as exc:
        raise ModelFormatError(
            f"{gguf.path.name}: tensor {plan.gguf_name} uses {tensor.tensor_type.name}, which cannot be dequantized here"
        ) from exc
    values = np.asarray(values, dtype=np.float32).reshape(plan.shape)
    if plan.unpermute_heads:
        values = unpermute_rows(values, plan.unpermute_heads)
    if plan.shift:
        values = values - np.float32(plan.shift)
    return values


def write_safetensors(
    gguf: GGUFFile, plans: list[TensorPlan], path: Path, on_tensor: Callable[[int, int], None] | None = None
) -> int:
    """Stream the planned tensors into ``path`` (float32); returns the file size in bytes.

    ``on_tensor(bytes_done, bytes_total)`` is called after each tensor.
    """
    header: dict[str, object] = {"__metadata__": {"format": "pt", "source": "gguf"}}
    offset = 0
    for plan in plans:
        header[plan.hf_name] = {"dtype": "F32", "shape": list(plan.shape), "data_offsets": [offset, offset + plan.nbytes]}
        offset += plan.nbytes
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # the data starts 8-byte aligned
    with open(path, "wb") as f:
        f.write(len(blob).to_bytes(8, "little"))
        f.write(blob)
        done = 0
        for plan in plans:
            values = dequantized(gguf, plan)
            f.write(np.ascontiguousarray(values, dtype="<f4").tobytes())
            done += plan.nbytes
            if on_tensor:
                on_tensor(done, offset)
    return 8 + len(blob) + offset
