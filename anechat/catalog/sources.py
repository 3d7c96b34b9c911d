"""Where models are found: the Hugging Face cache, anechat's models folder, and the
extra folders named in the config file (``[models] folders = [...]``).

Each source yields :class:`Candidate` paths; format detection happens later. A
source that cannot be read gives a one-line warning, never an exception.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MODEL_MARKERS = ("config.json", "meta.yaml")


@dataclass(frozen=True)
class Candidate:
    path: Path
    source: str  # "anechat" | "hf-cache" | "folder"
    name: str  # suggested short name (may collide; the catalog makes names unique)
    repo_id: str | None = None
    revision: str | None = None


def hf_cache_dir() -> Path:
    """The hub cache, read from the environment at call time (HF_HUB_CACHE, HF_HOME, XDG_CACHE_HOME)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.path.expandvars(os.environ[var])).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser() / "hub"
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(xdg) / "huggingface" / "hub"


def short_name(text: str) -> str:
    """``mlx-community/SmolLM2-135M-Instruct-4bit`` -> ``smollm2-135m-instruct-4bit``."""
    return text.rstrip("/").rsplit("/", 1)[-1].strip().lower().replace(" ", "-")


def looks_like_model(folder: Path) -> bool:
    try:
        return any((folder / m).is_file() for m in MODEL_MARKERS) or any(folder.glob("*.safetensors"))
    except OSError:
        return False


def scan_hf_cache(cache_dir: Path | None = None) -> tuple[list[Candidate], list[str]]:
    """One candidate per model repo in the hub cache: the revision ``main`` points at, else the newest."""
    cache_dir = cache_dir or hf_cache_dir()
    if not cache_dir.is_dir():
        return [], []
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound, CorruptedCacheException

    try:
        info = scan_cache_dir(cache_dir)
    except (CacheNotFound, CorruptedCacheException, OSError) as exc:
        return [], [f"Hugging Face cache {cache_dir}: {exc}"]
    warnings = [f"Hugging Face cache: {w}" for w in info.warnings]
    found = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        revisions = sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True)
        chosen = next((r for r in revisions if "main" in r.refs), revisions[0])
        found.append(
            Candidate(
                path=Path(chosen.snapshot_path),
                source="hf-cache",
                name=short_name(repo.repo_id),
                repo_id=repo.repo_id,
                revision=chosen.commit_hash,
            )
        )
    return found, warnings


def scan_folder(folder: Path, source: str, *, skip: tuple[Path, ...] = ()) -> tuple[list[Candidate], list[str]]:
    """The models in ``folder``: the folder itself if it is one, else each sub-folder and
    ``.gguf`` file (one more level down for sub-folders that hold models, e.g. ``org/model``).
    A sub-folder that is not a model is listed too (detection says why). Hidden entries
    (``.name``, e.g. a conversion's temp folder) are skipped."""
    folder = Path(folder).expanduser()
    if not folder.exists():
        return [], []
    if folder.is_file():
        return ([Candidate(folder, source, short_name(folder.stem))] if folder.suffix.lower() == ".gguf" else []), []
    if looks_like_model(folder):
        return [Candidate(folder, source, short_name(folder.name))], []
    found: list[Candidate] = []
    try:
        children = sorted(folder.iterdir())
    except OSError as exc:
        return [], [f"cannot read {folder} ({exc.strerror or exc})"]
    skip_resolved = {_resolved(p) for p in skip}
    for child in children:
        if child.name.startswith(".") or _resolved(child) in skip_resolved:
            continue
        if child.is_file() and child.suffix.lower() == ".gguf":
            found.append(Candidate(child, source, short_name(child.stem)))
        elif child.is_dir():
            nested = [] if looks_like_model(child) or _has_gguf(child) else [
                g for g in _subdirs(child) if looks_like_model(g)
            ]
            if nested:  # an org/model layout
                found += [Candidate(g, source, short_name(g.name)) for g in nested]
            else:  # a model, or something listed as unsupported with the reason
                found.append(Candidate(child, source, short_name(child.name)))
    return found, []


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


def _has_gguf(folder: Path) -> bool:
    try:
        return any(folder.glob("*.gguf"))
    except OSError:
        return False


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def configured_folders() -> tuple[list[Path], list[str]]:
    """``[models] folders = [...]`` from the settings that exist, and warnings (broken file, bad values)."""
    from anechat.config import load_config

    settings = load_config()
    warnings = list(settings.warnings)
    folders = []
    for item in settings.model_folders:
        path = Path(os.path.expandvars(item)).expanduser()
        if not path.exists():
            warnings.append(f"{settings.path}: [models] folders: {path} does not exist; ignored")
            continue
        folders.append(path)
    return folders, warnings
