"""GGUF file -> MLX / Hugging Face model folder, written atomically.

The folder is assembled in a hidden sibling (``.<name>.partial-<pid>-<random>``)
and renamed into place only when complete, so an interrupted import never
leaves a folder that looks like a model; leftovers of killed runs (their pid is
gone) are removed by the next import of the same name. A marker file (``anechat-import.json``) records the source
and the importer version, which lets :func:`ensure_imported` tell a finished,
current import from anything else in a few ``stat`` calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Callable, Iterator

from anechat.engines.errors import EngineError, ModelFormatError

from anechat.convert.gguf.config import llama_config
from anechat.convert.gguf.reader import GGUFFile
from anechat.convert.gguf.tensors import TensorPlan, dequantized, plan_tensors, write_safetensors
from anechat.convert.gguf.vocab import build_tokenizer, generation_config, tokenizer_config

#: progress(step, fraction): step is a short label ("reading", "weights", ...), fraction the whole job done, 0..1
Progress = Callable[[str, float], None]

MARKER = "anechat-import.json"
IMPORTER_VERSION = 1
MODEL_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json")


class ImportTargetExists(EngineError):
    kind = "target_exists"


def _report(progress: Progress | None, step: str, fraction: float) -> None:
    if progress is not None:
        progress(step, min(1.0, max(0.0, fraction)))


def _write_json(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _scratch(target: Path, kind: str) -> Path:
    """A hidden sibling of ``target`` owned by this process: ``.<name>.<kind>-<pid>-<random>``."""
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _remove_stale_scratch(target: Path) -> None:
    """Delete scratch folders (``partial``, ``old``) left by processes that are gone."""
    if not target.parent.is_dir():
        return
    for kind in ("partial", "old"):
        for leftover in target.parent.glob(f".{target.name}.{kind}-*"):
            try:
                pid = int(leftover.name.rsplit(f".{kind}-", 1)[1].split("-", 1)[0])
            except ValueError:
                continue
            if not _pid_alive(pid):
                shutil.rmtree(leftover, ignore_errors=True)


def read_marker(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def is_current_import(folder: Path, source: Path) -> bool:
    """True when ``folder`` is a complete import of ``source`` by this importer version."""
    folder, source = Path(folder), Path(source)
    marker = read_marker(folder)
    if not marker or marker.get("importer_version") != IMPORTER_VERSION:
        return False
    try:
        if marker.get("source_bytes") != source.stat().st_size:
            return False
        if (folder / "model.safetensors").stat().st_size != marker.get("weights_bytes"):
            return False
    except OSError:
        return False
    return all((folder / name).is_file() for name in MODEL_FILES)


def _install(tmp: Path, target: Path, overwrite: bool) -> None:
    """Move the finished folder into place; never leaves ``target`` half-replaced."""
    old = None
    if target.exists():
        if not overwrite:
            raise ImportTargetExists(f"{target} already exists", hint="remove it, or import under another name")
        old = _scratch(target, "old")
        target.rename(old)
    try:
        os.rename(tmp, target)  # fails if another process put a folder there meanwhile
    except OSError as exc:
        if old is not None and not target.exists():
            old.rename(target)
            old = None
        raise ImportTargetExists(f"{target} appeared while importing", hint="another import finished first") from exc
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def import_gguf(gguf_path: Path | str, out_dir: Path | str, progress: Progress | None = None, *, overwrite: bool = False) -> Path:
    """Convert a llama GGUF into an MLX / Hugging Face folder at ``out_dir`` and return it.

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
    config = llama_config(gguf, rope_freqs)
    plans = plan_tensors(gguf, config)
    tokenizer = build_tokenizer(gguf)
    _report(progress, "tokenizer", 0.02)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_scratch(out_dir)
    tmp = _scratch(out_dir, "partial")
    tmp.mkdir()
    try:
        tokenizer.save(str(tmp / "tokenizer.json"))
        _write_json(tmp / "tokenizer_config.json", tokenizer_config(gguf, tokenizer, config["max_position_embeddings"]))
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
        _install(tmp, out_dir, overwrite)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    _report(progress, "done", 1.0)
    return out_dir


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
