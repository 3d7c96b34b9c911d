"""The ANEMLL folder layout: part names, meta.yaml and the copied tokenizer files."""

from __future__ import annotations

import shutil
from importlib import metadata
from pathlib import Path

import yaml

from anechat.engines.coreml.convert.source import TOKENIZER_FILES_OPTIONAL, TOKENIZER_FILES_REQUIRED, LlamaSpec

#: the ANEMLL layout version the folder follows
LAYOUT_VERSION = "0.3.4"


def lut_suffix(bits: int | None) -> str:
    return f"_lut{bits}" if bits else ""


def embeddings_name(prefix: str, lut: int | None) -> str:
    return f"{prefix}_embeddings{lut_suffix(lut)}.mlpackage"


def ffn_base_name(prefix: str, lut: int | None) -> str:
    """The name meta.yaml gives the FFN (no chunk suffix, as ANEMLL writes it)."""
    return f"{prefix}_FFN_PF{lut_suffix(lut)}.mlpackage"


def ffn_chunk_name(prefix: str, lut: int | None, index: int, count: int) -> str:
    """``index`` counts from 1."""
    return f"{prefix}_FFN_PF{lut_suffix(lut)}_chunk_{index:02d}of{count:02d}.mlpackage"


def lm_head_name(prefix: str, lut: int | None) -> str:
    return f"{prefix}_lm_head{lut_suffix(lut)}.mlpackage"


def converter_version() -> str:
    try:
        return metadata.version("anechat")
    except metadata.PackageNotFoundError:
        return "unknown"


def meta_document(spec: LlamaSpec, options, lm_head_sizes: list[int], state_length: int) -> dict:
    def lut(bits):
        return bits if bits else "none"

    return {
        "model_info": {
            "name": spec.name,
            "version": LAYOUT_VERSION,
            "description": f"{spec.name} converted for the Apple Neural Engine by anechat "
            f"(context {options.context_length}, batch {options.batch_size}, {options.num_chunks} chunk(s))",
            "license": spec.license or "see the source model",
            "framework": "Core ML",
            "architecture": "llama",
            "converter": f"anechat {converter_version()}",
            "parameters": {
                "context_length": options.context_length,
                "state_length": state_length,
                "batch_size": options.batch_size,
                "num_chunks": options.num_chunks,
                "model_prefix": options.prefix,
                "lut_embeddings": lut(options.lut_embeddings),
                "lut_ffn": lut(options.lut_ffn),
                "lut_lmhead": lut(options.lut_lmhead),
                "lut_group_size": options.group_size,
                "split_lm_head": len(lm_head_sizes),
                "lm_head_chunk_sizes": list(lm_head_sizes),
                "vocab_size": int(sum(lm_head_sizes)),
                "hidden_size": spec.hidden_size,
                "num_layers": spec.num_layers,
                "embeddings": embeddings_name(options.prefix, options.lut_embeddings),
                "lm_head": lm_head_name(options.prefix, options.lut_lmhead),
                "ffn": ffn_base_name(options.prefix, options.lut_ffn),
                "argmax_in_model": False,
            },
        }
    }


def write_meta(folder: Path, document: dict) -> Path:
    path = folder / "meta.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))
    return path


def copy_tokenizer(src: Path, folder: Path) -> list[str]:
    """Copy the tokenizer and generation files the runtime needs; returns their names."""
    copied = []
    for name in TOKENIZER_FILES_REQUIRED + TOKENIZER_FILES_OPTIONAL:
        if (src / name).is_file():
            shutil.copy2(src / name, folder / name)
            copied.append(name)
    return copied
