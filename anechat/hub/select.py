"""Which files of a hub repo a model needs, and unpacking zipped Core ML parts.

Taken: config / tokenizer / generation files, ``model*.safetensors`` and their index
(every ``*.safetensors`` when none is named ``model*``), ``meta.yaml`` and the Core ML
parts of ANEMLL repos (``*.mlmodelc/`` or ``*.mlpackage/`` trees, else their
``*.mlmodelc.zip`` archives), the chat template, licence and README.
Left out: PyTorch ``*.bin`` / ``*.pth``, ONNX, GGUF, TensorFlow / Flax duplicates,
``original/`` checkpoints, sub-folders of other tools.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import uuid
import zipfile
from pathlib import Path

TOP_LEVEL_PATTERNS = (
    "config.json",
    "generation_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "tokenizer.model",
    "tiktoken.model",
    "*.tiktoken",
    "vocab.json",
    "merges.txt",
    "chat_template.jinja",
    "chat_template.json",
    "model.safetensors.index.json",
    "meta.yaml",
    "README.md",
    "LICENSE*",
    "NOTICE*",
)
#: written last, so an interrupted pull never looks like a complete model
MARKER_FILES = ("config.json", "meta.yaml")
CORE_ML_DIRS = (".mlmodelc", ".mlpackage")
ZIPPED_PART = ".mlmodelc.zip"


def _in_core_ml_dir(path: str) -> bool:
    top = path.split("/", 1)[0]
    return "/" in path and top.endswith(CORE_ML_DIRS)


def select_files(paths: list[str]) -> tuple[list[str], list[str]]:
    """(files to download, files left out) for a repo listing of ``/``-separated paths."""
    top_level = [p for p in paths if "/" not in p]
    safetensors = [p for p in top_level if p.endswith(".safetensors")]
    model_shards = [p for p in safetensors if p.startswith("model")]
    weights = set(model_shards or safetensors)
    has_core_ml_dirs = any(_in_core_ml_dir(p) for p in paths)
    keep: list[str] = []
    for p in paths:
        name = p.rsplit("/", 1)[-1]
        if _in_core_ml_dir(p):
            keep.append(p)
        elif "/" in p:
            continue
        elif p in weights or any(fnmatch.fnmatch(name, pattern) for pattern in TOP_LEVEL_PATTERNS):
            keep.append(p)
        elif name.endswith(ZIPPED_PART) and not has_core_ml_dirs and "meta.yaml" in top_level:
            keep.append(p)
    kept = set(keep)
    return keep, [p for p in paths if p not in kept]


def download_order(paths: list[str], sizes: dict[str, int | None]) -> list[str]:
    """Largest files first, marker files (config.json, meta.yaml) last."""
    body = [p for p in paths if p not in MARKER_FILES]
    body.sort(key=lambda p: -(sizes.get(p) or 0))
    return body + [p for p in MARKER_FILES if p in paths]


def has_usable_files(paths: list[str]) -> bool:
    return any(p.endswith(".safetensors") for p in paths) or "meta.yaml" in paths


def unpack_core_ml_zip(archive: Path, folder: Path) -> Path:
    """Extract ``X.mlmodelc.zip`` as ``folder/X.mlmodelc`` (temp folder + rename; no path escapes).

    A no-op when the part is already unpacked. Returns the part's folder.
    """
    target = folder / archive.name[: -len(".zip")]
    if target.is_dir():
        return target
    tmp = folder / f".{target.name}.unpacking-{uuid.uuid4().hex[:8]}"
    try:
        with zipfile.ZipFile(archive) as zf:
            names = [n for n in zf.namelist() if not n.startswith("__MACOSX/")]
            for name in names:
                if name.startswith("/") or ".." in Path(name).parts:
                    raise zipfile.BadZipFile(f"{archive.name} holds an unsafe path: {name}")
            prefix = target.name + "/"
            nested = all(n.startswith(prefix) or n == target.name for n in names)
            tmp.mkdir()
            for name in names:
                zf.extract(name, tmp)
        source = tmp / target.name if nested else tmp
        os.replace(source, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
