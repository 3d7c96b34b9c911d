"""One file of a pull into the Hugging Face cache layout, built from checked values only.

The layout is huggingface_hub's (``blobs/<etag>``, ``snapshots/<commit>/<name>`` a
relative symlink to the blob), so mlx_lm and transformers share what anechat pulls.
huggingface_hub does the HTTP (``get_hf_file_metadata`` for the HEAD, ``http_get`` for
the body, with its retries and ``Range`` resume after a cut); anechat builds every path
itself, from values :mod:`anechat.hub.checks` accepted, so nothing the server sends can
point a write outside the cache.

1. :func:`head`: the file's commit must be the pull's, its ETag hex, and (LFS) equal to
   the sha256 the API announced; its size must be the API's.
2. :func:`download`: the body goes to ``blobs/<etag>.<random>.incomplete``, stopped past
   the announced size (:class:`anechat.hub.progress.Tracker`), checked against the
   announced sha256, then renamed to ``blobs/<etag>``; the snapshot link is made last.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from anechat.hub.checks import check_commit, check_etag, shown
from anechat.hub.errors import CacheEscape, DownloadMismatch, UnsafeHubValue
from anechat.hub.progress import Tracker


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str  # where the body is fetched (after the hub's own redirects)
    blob: str  # the checked ETag: the blob's name in the cache
    size: int


@dataclass(frozen=True)
class Target:
    """Where a pull writes: the repo's cache folder and the snapshot of one commit."""

    repo_id: str
    commit: str
    storage: Path
    cache_dir: Path
    token: str | bool | None
    headers: dict  # huggingface_hub's request headers for ``token`` (and anechat's user agent)

    @property
    def blobs(self) -> Path:
        return self.storage / "blobs"

    @property
    def snapshot(self) -> Path:
        return self.storage / "snapshots" / self.commit


def head(target: Target, name: str, *, endpoint: str, size: int | None, sha256: str | None) -> RemoteFile:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(target.repo_id, name, revision=target.commit, endpoint=endpoint)
    meta = get_hf_file_metadata(url, token=target.token, headers=target.headers, endpoint=endpoint)
    commit = check_commit(target.repo_id, meta.commit_hash)
    if commit != target.commit:
        raise UnsafeHubValue(
            f"the hub answered commit {shown(commit)} for {shown(name)} of {target.repo_id}, "
            f"not the pulled commit {target.commit}; nothing was downloaded"
        )
    blob = check_etag(target.repo_id, name, meta.etag)
    if sha256 is not None and blob != sha256:
        raise UnsafeHubValue(
            f"the ETag of {shown(name)} of {target.repo_id} ({blob}) is not the sha256 the hub announced ({sha256}); "
            "nothing was downloaded"
        )
    if size is not None and meta.size is not None and meta.size != size:
        raise DownloadMismatch(
            f"{target.repo_id}: {shown(name)} is announced as {size} bytes but served as {meta.size}; nothing was downloaded"
        )
    announced = size if size is not None else meta.size
    if announced is None:
        raise DownloadMismatch(f"{target.repo_id}: the hub announced no size for {shown(name)}; nothing was downloaded")
    return RemoteFile(name, meta.location, blob, announced)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download_blob(target: Target, remote: RemoteFile, tracker: Tracker, sha256: str | None, created: list[Path]) -> Path:
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import WeakFileLock

    blob = target.blobs / remote.blob
    target.blobs.mkdir(parents=True, exist_ok=True)
    lock = target.cache_dir / ".locks" / target.storage.name / f"{remote.blob}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with WeakFileLock(lock):
        if blob.is_file():
            return blob
        tmp = target.blobs / f"{remote.blob}.{uuid.uuid4().hex[:8]}.incomplete"
        try:
            with tmp.open("wb") as f:
                try:
                    http_get(remote.url, f, headers=target.headers, expected_size=remote.size, tqdm_class=tracker.bar_class(remote.name, remote.size))
                except OSError as exc:
                    if "Consistency check failed" not in str(exc):
                        raise
                    raise DownloadMismatch(
                        f"{target.repo_id}: the hub sent fewer bytes than the {remote.size} it announced for {shown(remote.name)}",
                        hint="run the pull again",
                    ) from None
            if sha256 is not None and _sha256(tmp) != sha256:
                raise DownloadMismatch(
                    f"{target.repo_id}: {shown(remote.name)} does not match the sha256 the hub announced; the file was deleted",
                    hint="the hub or a proxy in between is broken; try again later",
                )
            os.replace(tmp, blob)
            created.append(blob)
        finally:
            tmp.unlink(missing_ok=True)
    return blob


def link(target: Target, name: str, blob: Path, created: list[Path]) -> None:
    """``snapshots/<commit>/<name>`` -> ``../../blobs/<etag>`` (relative), unless it is there."""
    pointer = target.snapshot / name
    if pointer.is_symlink() or pointer.exists():
        return
    pointer.parent.mkdir(parents=True, exist_ok=True)
    real_snapshot = os.path.realpath(target.snapshot)
    real_parent = os.path.realpath(pointer.parent)
    if real_parent != real_snapshot and not real_parent.startswith(real_snapshot + os.sep):
        raise CacheEscape(f"{target.repo_id}: the folder of {shown(name)} in the snapshot points outside the cache; nothing was linked")
    os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    created.append(pointer)


def download(target: Target, remote: RemoteFile, tracker: Tracker, sha256: str | None, created: list[Path]) -> None:
    tracker.check()
    blob = _download_blob(target, remote, tracker, sha256, created)
    link(target, remote.name, blob, created)
