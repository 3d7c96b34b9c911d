"""What the converter writes beside the parts: ``meta.yaml`` (from the options) and the
tokenizer files. Part names and the ``meta.yaml`` format come from :mod:`..anemll`."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

from anechat.engines.coreml.anemll import LAYOUT_VERSION, AnemllMeta
from anechat.engines.coreml.anemll.names import embeddings_stem, ffn_stem, lm_head_stem
from anechat.engines.coreml.convert.options import CoreMLConvertOptions
from anechat.engines.coreml.convert.source import TOKENIZER_FILES_OPTIONAL, TOKENIZER_FILES_REQUIRED
from anechat.engines.modeling.spec import ModelSpec


def converter_version() -> str:
    try:
        return metadata.version("anechat")
    except metadata.PackageNotFoundError:
        return "unknown"


def meta_for(spec: ModelSpec, options: CoreMLConvertOptions, lm_head_sizes: list[int]) -> AnemllMeta:
    """The meta.yaml record of a folder converted from ``spec`` with ``options``."""
    o = options

    def group(part: str, bits: int | None) -> int | None:
        return o.group(part, bits, spec.hidden_size) if bits else None

    return AnemllMeta(
        name=spec.name,
        version=LAYOUT_VERSION,
        description=f"{spec.name} converted for the Apple Neural Engine by anechat "
        f"(context {o.context_length}, batch {o.batch_size}, {o.num_chunks} chunk(s))",
        license=spec.license or "see the source model",
        framework="Core ML",
        architecture=spec.family,
        converter=f"anechat {converter_version()}",
        context_length=o.context_length,
        state_length=o.context_length,
        batch_size=o.batch_size,
        num_chunks=o.num_chunks,
        model_prefix=o.prefix,
        lut_embeddings=o.lut_embeddings,
        lut_embeddings_per_channel=group("embeddings", o.lut_embeddings),
        lut_ffn=o.lut_ffn,
        lut_ffn_per_channel=group("ffn", o.lut_ffn),
        lut_ffn_down=o.ffn_bits().get("down") if o.ffn_bits().get("down") != o.lut_ffn else None,
        lut_ffn_last=o.ffn_bits().get("last") if o.ffn_bits().get("last") != o.lut_ffn else None,
        lut_lmhead=o.lut_lmhead,
        lut_lmhead_per_channel=group("lm_head", o.lut_lmhead),
        split_lm_head=len(lm_head_sizes),
        lm_head_chunk_sizes=tuple(lm_head_sizes),
        vocab_size=int(sum(lm_head_sizes)),
        hidden_size=spec.hidden_size,
        num_layers=spec.num_layers,
        embeddings=embeddings_stem(o.prefix, o.lut_embeddings) + ".mlpackage",
        lm_head=lm_head_stem(o.prefix, o.lut_lmhead) + ".mlpackage",
        ffn=ffn_stem(o.prefix, o.lut_ffn) + ".mlpackage",
        argmax_in_model=False,
    )


def copy_tokenizer(src: Path, folder: Path) -> list[str]:
    """Copy the tokenizer and generation files the runtime needs; returns their names."""
    copied = []
    for name in TOKENIZER_FILES_REQUIRED + TOKENIZER_FILES_OPTIONAL:
        if (src / name).is_file():
            shutil.copy2(src / name, folder / name)
            copied.append(name)
    return copied
