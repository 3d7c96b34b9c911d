"""GGUF file -> MLX / Hugging Face model folder, written atomically.

The folder is assembled by :func:`anechat.engines.files.atomic_folder` (a hidden
sibling renamed into place only when complete; leftovers of killed runs are
removed by the next import of the same name), so an interrupted import never
leaves a folder that looks like a model. A marker file
(:mod:`anechat.catalog.import_marker`) records the source and the importer
version, which lets :func:`ensure_imported` tell a finished, current import from
anything else in a few ``stat`` calls.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Callable, Iterator

from anechat.catalog.import_marker import IMPORTER_VERSION, MARKER, is_current_import, read_marker
from anechat.convert.errors import ImportTargetExists
from anechat.engines.errors import ModelFormatError
from anechat.engines.files import atomic_folder

from anechat.convert.gguf.architectures import architecture_of
from anechat.convert.gguf.reader import GGUFFile
from anechat.convert.gguf.tensors import TensorPlan, dequantized, plan_tensors, write_safetensors
from anechat.convert.gguf.vocab import build_tokenizer, generation_config, tokenizer_config

#: progress(step, fraction): step is a short label ("reading", "weights", ...), fraction the whole job done, 0..1
Progress = Callable[[str, float], None]


def _report(progress: Progress | None, step: str, fraction: float) -> None:
    if progress is not None:
        progress(step, min(1.0, max(0.0, fraction)))


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def import_gguf(gguf_path: Path | str, out_dir: Path | str, progress: Progress | None = None, *, overwrite: bool = False) -> Path:
    """Convert a llama or Gemma 3 GGUF into an MLX / Hugging Face folder at ``out_dir`` and return it.

    Raises ModelFormatError (unsupported architecture, tokenizer or tensor),
    ModelNotFound (no such file) or ImportTargetExists (``out_dir`` exists and
    ``overwrite`` is False). On any failure, including KeyboardInterrupt,
    nothing is left at ``out_dir``.
    """
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise ImportTargetExists(f"{out_dir} already exists", hint="remove it, or import under another name")
    _report(progress, "reading", 0.0)
    gguf = GGUFFile(gguf_path)
    rope_freqs = None
    if "rope_freqs.weight" in gguf.tensors:
        rope_freqs = dequantized(gguf, TensorPlan("rope_freqs.weight", "rope_freqs", gguf.tensor_shape("rope_freqs.weight"), None))
    arch = architecture_of(gguf)
    config = arch.config(gguf, rope_freqs)
    plans = plan_tensors(gguf, config, arch)
    tokenizer = build_tokenizer(gguf)
    template = arch.chat_template if all(tokenizer.token_to_id(t) is not None for t in arch.template_tokens) else None
    _report(progress, "tokenizer", 0.02)

    try:
        with atomic_folder(out_dir, replace=overwrite) as tmp:
            _write_folder(gguf, plans, config, tokenizer, template, gguf_path, tmp, progress)
    except FileExistsError as exc:
        raise ImportTargetExists(str(exc), hint="another import finished first") from exc
    _report(progress, "done", 1.0)
    return out_dir


def _write_folder(
    gguf: GGUFFile, plans, config: dict, tokenizer, template: str | None, gguf_path: Path, tmp: Path, progress: Progress | None
) -> None:
    tokenizer.save(str(tmp / "tokenizer.json"))
    _write_json(tmp / "tokenizer_config.json", tokenizer_config(gguf, tokenizer, config["max_position_embeddings"], template))
    _write_json(tmp / "generation_config.json", generation_config(gguf))
    _write_json(tmp / "config.json", config)
    _report(progress, "weights", 0.03)
    weights_bytes = write_safetensors(
        gguf, plans, tmp / "model.safetensors", lambda done, total: _report(progress, "weights", 0.03 + 0.95 * done / total)
    )
    _report(progress, "finishing", 0.99)
    _write_json(
        tmp / MARKER,
        {
            "importer_version": IMPORTER_VERSION,
            "source": str(gguf_path.resolve()),
            "source_bytes": gguf_path.stat().st_size,
            "source_name": gguf.name,
            "source_types": sorted({gguf.tensors[p.gguf_name].tensor_type.name for p in plans}),
            "weights_bytes": weights_bytes,
        },
    )


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    """An exclusive advisory lock (POSIX flock); a no-op where flock does not exist."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_imported(gguf_path: Path | str, out_dir: Path | str, progress: Progress | None = None) -> Path:
    """``out_dir`` as a current import of ``gguf_path``: converts once, then a cheap check.

    Safe when several processes ask at once: they serialize on a lock file next
    to ``out_dir`` and the later ones find the finished folder. A folder at
    ``out_dir`` that this importer did not make is never replaced.
    """
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    if is_current_import(out_dir, gguf_path):
        return out_dir
    with _locked(out_dir.with_name(f".{out_dir.name}.lock")):
        if is_current_import(out_dir, gguf_path):
            return out_dir
        if out_dir.exists() and read_marker(out_dir) is None:
            raise ModelFormatError(
                f"{out_dir} exists but was not made by anechat's GGUF importer",
                hint="move it away so anechat can convert the model there",
            )
        try:
            return import_gguf(gguf_path, out_dir, progress, overwrite=True)
        except ImportTargetExists:
            if is_current_import(out_dir, gguf_path):
                return out_dir
            raise
