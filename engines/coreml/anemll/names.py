"""The naming rules of ANEMLL part files — the one place anechat spells them.

A part is a folder named ``{stem}.mlpackage`` (saved program) or ``{stem}.mlmodelc``
(compiled by Xcode's tools on a Mac). Stems:

- embeddings: ``{prefix}_embeddings[_lutN]``
- FFN chunks: ``{prefix}_FFN_PF[_lutN]_chunk_01of02`` (infer + prefill in one package);
  older releases: ``{prefix}_FFN[_lutN]_chunk_..`` and ``{prefix}_prefill[_lutN]_chunk_..``
- LM head: ``{prefix}_lm_head[_lutN]``
- monolithic (ANEMLL 0.3.5 ``--monolithic``: embeddings + layers + LM head in one package,
  functions ``infer`` and ``prefill``): ``{prefix}_monolithic_full[_lutN]``; before they are
  combined, ``{prefix}_monolithic[_lutN]`` (infer) and ``{prefix}_monolithic_prefill[_lutN]``

``meta.yaml`` may name a part with either suffix and the FFN without its chunk suffix.
"""

from __future__ import annotations

import re

#: the suffixes of a part, in the order a reader without Core ML prefers them
PART_SUFFIXES = (".mlpackage", ".mlmodelc")
CHUNK_RE = re.compile(r"_chunk_(\d+)of(\d+)$")
LUT_RE = re.compile(r"_lut(\d+)$")


def lut_suffix(bits: int | None) -> str:
    return f"_lut{bits}" if bits else ""


def embeddings_stem(prefix: str, lut: int | None) -> str:
    return f"{prefix}_embeddings{lut_suffix(lut)}"


def ffn_stem(prefix: str, lut: int | None) -> str:
    """The FFN without a chunk suffix, as ``meta.yaml`` names it."""
    return f"{prefix}_FFN_PF{lut_suffix(lut)}"


def monolithic_stem(prefix: str, lut: int | None, function: str | None = None) -> str:
    """The combined package (``function`` None), or the single-function one before combining."""
    kind = {None: "_monolithic_full", "infer": "_monolithic", "prefill": "_monolithic_prefill"}[function]
    return f"{prefix}{kind}{lut_suffix(lut)}"


def chunk_stem(base: str, index: int, count: int) -> str:
    """``index`` counts from 1: ``llama_FFN_PF_lut6`` -> ``llama_FFN_PF_lut6_chunk_01of02``."""
    return f"{base}_chunk_{index:02d}of{count:02d}"


def lm_head_stem(prefix: str, lut: int | None) -> str:
    return f"{prefix}_lm_head{lut_suffix(lut)}"


def strip_part_suffix(name: str) -> str:
    """``llama_lm_head.mlmodelc`` -> ``llama_lm_head``."""
    for suffix in PART_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def strip_chunk(stem: str) -> str:
    """``llama_FFN_PF_chunk_01of02`` -> ``llama_FFN_PF``."""
    return CHUNK_RE.sub("", stem)


def lut_of(stem: str) -> int | None:
    """The LUT size a stem carries (``llama_lm_head_lut6`` -> 6), else None."""
    m = LUT_RE.search(strip_chunk(stem))
    return int(m.group(1)) if m else None
