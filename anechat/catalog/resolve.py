"""The catalog: every model on this machine under a short unique name, and name resolution.

Order of sources: the built-in default model, anechat's models folder, the extra
folders from the config file, the folders ``anechat convert -o`` wrote elsewhere
(:mod:`anechat.catalog.registered`), the Hugging Face cache. Names are short and lowercase
(``smollm2-135m-instruct``, ``smollm2-135m-instruct-4bit``); on a clash a hub model
is named by its repo id and others get ``-2``, ``-3``. ``resolve_model`` accepts a
name, a repo id, ``default``, or a path (absolute, relative, ``~``).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from anechat.engines.errors import ModelFormatError, ModelNotFound

from anechat.catalog.entry import ModelEntry
from anechat.catalog.formats import detect, gguf_files
from anechat.catalog.provenance import read_origin
from anechat.catalog.registered import registered_paths
from anechat.catalog.sizes import disk_size
from anechat.catalog.sources import Candidate, configured_folders, hf_cache_dir, scan_folder, scan_hf_cache, short_name

DEFAULT_ALIAS = "default"
LIST_HINT = "anechat models list shows what is here"
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass
class CatalogScan:
    entries: list[ModelEntry] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def find(self, name: str) -> ModelEntry | None:
        key = name.strip().lower()
        for entry in self.entries:
            if entry.name == key or (entry.repo_id and entry.repo_id.lower() == key):
                return entry
        return None


def entry_from(candidate: Candidate) -> ModelEntry:
    """Detect a candidate's format and describe it as a catalog entry."""
    det = detect(candidate.path)
    reason = det.reason
    if candidate.source == "hf-cache" and det.format == "unsupported" and not any(
        (candidate.path / m).exists() for m in ("config.json", "meta.yaml")
    ):
        reason = f"incomplete download (no config.json or meta.yaml yet): finish it with anechat models pull {candidate.repo_id}"
    return ModelEntry(
        name=candidate.name,
        path=candidate.path,
        source=candidate.source,  # type: ignore[arg-type]
        format=det.format,  # type: ignore[arg-type]
        engines=det.engines,
        size_bytes=disk_size(candidate.path),
        parameters=det.parameters,
        quantization=det.quantization,
        context_length=det.context_length,
        architecture=det.architecture,
        reason=reason,
        convertible=det.convertible,
        repo_id=candidate.repo_id,
        revision=candidate.revision,
        notes=det.notes,
        details=det.details,
        origin=read_origin(candidate.path) if candidate.path.is_dir() else None,
    )


def builtin_entry() -> tuple[ModelEntry | None, Path | None]:
    """The default model: its converted folder when converted, else the shipped GGUF
    (converted on first use by ``anechat.convert.default_model``). Returns (entry, converted folder)."""
    from anechat.catalog import default_model as dm
    folder = dm.default_model_dir()
    name = dm.DEFAULT_MODEL_NAME
    if dm.default_model_ready():
        entry = entry_from(Candidate(folder, "builtin", name))
        return entry.with_(notes=entry.notes + ("the built-in default model (converted from the shipped GGUF)",)), folder
    gguf = dm.default_gguf_path()
    if gguf is None:
        problem = dm.default_gguf_problem() or "the default model's weights are not installed"
        return ModelEntry(name=name, path=folder, source="builtin", format="unsupported", reason=problem), folder
    entry = entry_from(Candidate(gguf, "builtin", name))
    return (
        entry.with_(
            engines=("mlx",) if entry.format == "gguf" else entry.engines,
            reason="",
            notes=("converted on first use (a few seconds, once)",),
            needs_conversion=True,
        ),
        folder,
    )


def _unique_names(entries: list[ModelEntry]) -> list[ModelEntry]:
    taken: set[str] = set()
    out = []
    for entry in entries:
        name = entry.name or "model"
        if name in taken and entry.repo_id:
            name = entry.repo_id.lower()
        base, n = name, 2
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        taken.add(name)
        out.append(entry if name == entry.name else entry.with_(name=name))
    return out


def scan_catalog() -> CatalogScan:
    """Every model from every source, with warnings for sources that could not be read."""
    from anechat.paths import models_dir

    scan = CatalogScan()
    entries: list[ModelEntry] = []
    seen: set[Path] = set()

    def add(entry: ModelEntry) -> None:
        key = _resolved(entry.path)
        if key in seen:
            return
        seen.add(key)
        entries.append(entry)

    builtin, builtin_dir = builtin_entry()
    if builtin is not None:
        add(builtin)
    skip = (builtin_dir,) if builtin_dir else ()
    candidates, warnings = scan_folder(models_dir(), "anechat", skip=skip)
    scan.warnings += warnings
    folders, warnings = configured_folders()
    scan.warnings += warnings
    registered, warnings = registered_paths()
    scan.warnings += warnings
    for folder in folders + registered:
        found, warnings = scan_folder(folder, "folder", skip=skip)
        candidates += found
        scan.warnings += warnings
    found, warnings = scan_hf_cache(hf_cache_dir())
    candidates += found
    scan.warnings += warnings
    for candidate in candidates:
        if _resolved(candidate.path) not in seen:
            add(entry_from(candidate))
    scan.entries = _unique_names(entries)
    return scan


def list_models() -> list[ModelEntry]:
    return scan_catalog().entries


def _resolved(path: Path) -> Path:
    try:
        return path.expanduser().resolve()
    except OSError:
        return path


def entry_for_path(path: Path) -> ModelEntry:
    """An entry for a path given on the command line (a catalog entry if it is one)."""
    path = _resolved(path)
    if path.is_dir() and not (path / "config.json").exists() and not (path / "meta.yaml").exists():
        ggufs = gguf_files(path)
        if len(ggufs) == 1:
            path = ggufs[0]
    for entry in list_models():
        if _resolved(entry.path) == path:
            return entry
    name = short_name(path.stem if path.is_file() else path.name)
    return entry_from(Candidate(path, "path", name))


def _suggest(query: str, names: list[str]) -> list[str]:
    q = query.lower()
    scored = []
    for name in names:
        score = max(
            difflib.SequenceMatcher(None, q, name).ratio(),
            difflib.SequenceMatcher(None, q, name[: len(q) + 1]).ratio() - 0.1,
            1.0 if q in name else 0.0,
        )
        if score >= 0.6:
            scored.append((score, name))
    return [name for _, name in sorted(scored, key=lambda s: (-s[0], s[1]))[:3]]


def _usable(entry: ModelEntry, asked: str) -> ModelEntry:
    if entry.format == "unsupported" and entry.source == "builtin":  # its package is not installed
        raise ModelNotFound(entry.reason)
    if entry.format == "unsupported":
        raise ModelFormatError(f"{asked} is not a model anechat can use: {entry.reason}")
    return entry


def resolve_model(name_or_path: str | os.PathLike) -> ModelEntry:
    """A catalog name, a repo id, ``default``, or a path -> its entry.

    Raises ModelNotFound (with close names suggested) or ModelFormatError (saying
    what is missing) — never returns an unsupported entry.
    """
    entry = lookup_model(name_or_path)
    return _usable(entry, os.fspath(name_or_path).strip() if entry.source == "path" else entry.name)


def lookup_model(name_or_path: str | os.PathLike) -> ModelEntry:
    """Like :func:`resolve_model` but returns unsupported entries too (for ``info`` and ``rm``)."""
    text = os.fspath(name_or_path).strip()
    if not text:
        raise ModelNotFound("no model name given", hint=LIST_HINT)
    if text.lower() == DEFAULT_ALIAS:
        from anechat.catalog.default_model import DEFAULT_MODEL_NAME

        text = DEFAULT_MODEL_NAME
    path = Path(text).expanduser()
    explicit_path = text.startswith(("/", "~", "."))
    if path.exists():
        return entry_for_path(path)
    scan = scan_catalog()
    entry = scan.find(text)
    if entry is not None:
        return entry
    if explicit_path:
        raise ModelNotFound(f"no such file or folder: {text}")
    names = [e.name for e in scan.entries] + [e.repo_id.lower() for e in scan.entries if e.repo_id]
    close = _suggest(text, names)
    did_you_mean = f"did you mean {' or '.join(close)}? " if close else ""
    if _REPO_ID.match(text):
        raise ModelNotFound(f"no model named '{text}' here", hint=f"{did_you_mean}download it: anechat models pull {text}")
    raise ModelNotFound(f"no model named '{text}'", hint=f"{did_you_mean}({LIST_HINT})" if close else LIST_HINT)
