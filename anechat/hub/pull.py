"""``anechat models pull REPO[@REVISION]``: download a model from the Hugging Face hub.

Where: into the Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``), the same place
``mlx_lm`` and ``transformers`` use, so a model pulled here is shared with them and
listed by the catalog under its short name.

How (all through ``huggingface_hub``):

1. ``model_info(files_metadata=True)``: the commit, every file and its size.
2. Keep only the files a model needs (:mod:`anechat.hub.select`).
3. Check free disk space against the bytes not yet in the cache.
4. Ask for every missing file's metadata (HEAD) and check all of it before any
   download (:mod:`anechat.hub.checks`): a bad commit, ETag or file name refuses
   the whole pull in one line.
5. Download each file at that commit (:mod:`anechat.hub.fetch`), largest first,
   ``config.json`` / ``meta.yaml`` last, so an interrupted pull never looks like a
   complete model. A file stops at its announced size and is checked against its
   announced sha256. A connection cut mid-file resumes with an HTTP Range request;
   files finished before an interruption (Ctrl+C, lost network) are kept, and
   pulling again downloads only what is missing. (The partial file of the one file
   in flight is discarded when the process stops.)
6. Check that every file of the snapshot resolves inside the cache's ``blobs/``;
   otherwise remove what this pull created and fail.
7. Record ``refs/<revision>`` so the catalog and offline use find the snapshot.

Errors are one line each: not found (404), gated / unauthorised (401/403),
offline (``HF_HUB_OFFLINE=1`` or no network), not enough disk space, an unsafe
value from the hub, bytes that are not what the hub announced.
"""

from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from anechat.engines.errors import AnechatError, ModelNotFound

from anechat.hub.checks import check_commit, check_etag, check_file_name, check_revision_name, ensure_contained, escaping_entries
from anechat.hub.errors import (  # noqa: F401  (re-exported: callers catch these from anechat.hub.pull)
    CacheEscape,
    DownloadMismatch,
    HubOffline,
    HubUnauthorized,
    NotEnoughSpace,
    PullCancelled,
    PullError,
    RepoGated,
    UnsafeHubValue,
    hub_error,
    offline_error,
)
from anechat.hub.fetch import Target, download, head, link
from anechat.hub.progress import ByteProgress, PullProgress, Tracker
from anechat.safe_text import sanitize_for_terminal
from anechat.hub.select import MARKER_FILES, ZIPPED_PART, download_order, has_usable_files, select_files, unpack_core_ml_zip

_TRUE = ("1", "on", "yes", "true")


def step_progress(progress: Callable[[str, "float | None"], None]) -> ByteProgress:
    """Adapt a ``progress(step, fraction)`` callback (conversions, the app's bars) to pull's reports."""

    def report(p: PullProgress) -> None:
        progress(f"{p.files_done}/{p.files_total} {p.current_file}", p.done_bytes / p.total_bytes if p.total_bytes else None)

    return report


@dataclass
class PullPlan:
    repo_id: str
    revision: str
    commit: str
    files: list[str]
    sizes: dict[str, int | None]
    cached: set[str]
    skipped: list[str]
    cache_dir: Path
    gated: object = None
    blob_keys: dict[str, str] = field(default_factory=dict)  # the API's blob id or LFS sha256, checked
    sha256: dict[str, str] = field(default_factory=dict)  # the API's LFS sha256, checked

    @property
    def total_bytes(self) -> int:
        return sum(self.sizes.get(f) or 0 for f in self.files)

    @property
    def download_bytes(self) -> int:
        return sum(self.sizes.get(f) or 0 for f in self.files if f not in self.cached)

    @property
    def storage(self) -> Path:
        return self.cache_dir / ("models--" + self.repo_id.replace("/", "--"))

    @property
    def snapshot(self) -> Path:
        return self.storage / "snapshots" / self.commit


@dataclass
class PullResult:
    repo_id: str
    commit: str
    path: Path
    files: list[str]
    downloaded_bytes: int
    total_bytes: int
    skipped: list[str] = field(default_factory=list)


def parse_repo_spec(spec: str) -> tuple[str, str | None]:
    """``owner/name[@revision]`` -> (repo id, revision or None)."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    text = spec.strip()
    for prefix in ("https://huggingface.co/", "hf://"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    repo_id, _, revision = text.partition("@")
    repo_id = repo_id.strip().strip("/")
    if repo_id.count("/") != 1:
        from anechat.hub.packaged import PACKAGED

        raise ModelNotFound(
            f"'{spec}' is not a hub repo id",
            hint=f"use owner/name, e.g. mlx-community/SmolLM2-135M-Instruct-4bit, or a packaged model: {', '.join(PACKAGED)}",
        )
    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise ModelNotFound(f"'{repo_id}' is not a valid hub repo id ({exc})") from None
    return repo_id, (revision.strip() or None)


def is_offline() -> bool:
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE or constants.is_offline_mode()


def _endpoint(endpoint: str | None) -> str:
    from huggingface_hub import constants

    return (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def _free_bytes(path: Path) -> int:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


def plan_pull(spec: str, *, endpoint: str | None = None, cache_dir: Path | None = None, token: str | bool | None = None) -> PullPlan:
    """Ask the hub what ``spec`` holds and which files a pull would fetch (no download)."""
    from anechat import __version__
    from anechat.catalog import hf_cache_dir

    repo_id, revision = parse_repo_spec(spec)
    endpoint = _endpoint(endpoint)
    if is_offline():
        raise hub_error(offline_error(), repo_id, revision, endpoint)
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token, library_name="anechat", library_version=__version__)
    try:
        info = api.model_info(repo_id, revision=revision, files_metadata=True)
    except Exception as exc:  # mapped to typed errors
        raise hub_error(exc, repo_id, revision, endpoint) from None
    siblings = info.siblings or []
    commit = check_commit(repo_id, info.sha)
    if revision is not None and revision != commit:
        check_revision_name(repo_id, revision)
    sizes = {check_file_name(repo_id, s.rfilename): s.size for s in siblings}
    sha256 = {s.rfilename: check_etag(repo_id, s.rfilename, s.lfs.sha256) for s in siblings if s.lfs is not None}
    blob_ids = {s.rfilename: check_etag(repo_id, s.rfilename, s.blob_id) for s in siblings if s.lfs is None and s.blob_id}
    files, skipped = select_files([s.rfilename for s in siblings])
    if not has_usable_files(files):
        listed = sanitize_for_terminal(", ".join(sorted(sizes)[:6]) or "nothing")
        raise PullError(
            f"{repo_id} has no safetensors weights or Core ML model (it holds: {listed})",
            hint="anechat runs safetensors (MLX / Hugging Face) and ANEMLL Core ML repos; for a GGUF, download the file and use anechat convert",
        )
    cache = Path(cache_dir) if cache_dir else hf_cache_dir()
    plan = PullPlan(repo_id, revision or "main", commit, files, sizes, set(), skipped, cache, info.gated, blob_ids | sha256, sha256)
    for name in files:
        key = plan.blob_keys.get(name)
        if (plan.snapshot / name).exists() or (key and (plan.storage / "blobs" / key).exists()):
            plan.cached.add(name)
    return plan


def _run_all(work: Callable[[str], object], names: list[str], tracker: Tracker, max_workers: int) -> dict[str, object]:
    """``work(name)`` for every name on a few threads; the first error stops the others and is raised."""
    if not names:
        return {}
    pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(names))))
    try:
        futures = {name: pool.submit(work, name) for name in names}
        wait(futures.values(), return_when=FIRST_EXCEPTION)
        for future in futures.values():
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
    except BaseException:
        # stop the other downloads at their next chunk (Ctrl+C must not wait for them)
        tracker.abort.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return {name: future.result() for name, future in futures.items()}


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        if path.is_symlink() or path.is_file():
            path.unlink(missing_ok=True)
        elif path.is_dir():
            shutil.rmtree(path, ignore_errors=True)


def _undo(plan: PullPlan, created: list[Path], unpacked: set[str]) -> None:
    """Remove what this pull created, the entries that escape the cache and the marker links,
    so the snapshot never looks like a complete model."""
    _remove(reversed(created))
    _remove(escaping_entries(plan.snapshot, plan.storage / "blobs", unpacked))
    _remove(plan.snapshot / name for name in MARKER_FILES if (plan.snapshot / name).is_symlink())


def _write_ref(plan: PullPlan) -> None:
    if plan.revision == plan.commit:  # pulled by commit hash: no branch or tag to record
        return
    ref = plan.storage / "refs" / plan.revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    tmp = ref.with_name(f".{ref.name}.tmp-{os.getpid()}")
    tmp.write_text(plan.commit)
    os.replace(tmp, ref)


def pull(
    spec: str,
    *,
    progress: ByteProgress | None = None,
    endpoint: str | None = None,
    cache_dir: Path | None = None,
    token: str | bool | None = None,
    cancel: threading.Event | None = None,
    keep_free_bytes: int = 0,
    max_workers: int = 4,
    plan: PullPlan | None = None,
) -> PullResult:
    """Download ``spec`` (``owner/name[@revision]``) into the Hugging Face cache.

    ``keep_free_bytes``: refuse unless this much disk stays free after the download.
    ``cancel``: set it from another thread to stop (finished files are kept).
    """
    plan = plan or plan_pull(spec, endpoint=endpoint, cache_dir=cache_dir, token=token)
    endpoint = _endpoint(endpoint)
    unzip_bytes = sum(plan.sizes.get(f) or 0 for f in plan.files if f.endswith(ZIPPED_PART) and f not in plan.cached)
    needed = plan.download_bytes + unzip_bytes
    free = _free_bytes(plan.cache_dir)
    if needed + keep_free_bytes > free:
        from anechat.formatting import human_bytes

        raise NotEnoughSpace(
            f"not enough free disk space for {plan.repo_id}: it needs {human_bytes(needed)}, "
            f"{human_bytes(free)} free in {plan.cache_dir}",
            hint="free some space, or point HF_HOME at a bigger disk",
        )
    from huggingface_hub.utils import build_hf_headers

    from anechat import __version__

    headers = build_hf_headers(token=token, library_name="anechat", library_version=__version__)
    target = Target(plan.repo_id, plan.commit, plan.storage, plan.cache_dir, token, headers)
    tracker = Tracker(
        plan.repo_id,
        total=plan.total_bytes,
        done=sum(plan.sizes.get(f) or 0 for f in plan.cached),
        files_total=len(plan.files),
        files_done=sum(1 for f in plan.files if (plan.snapshot / f).exists()),
        progress=progress,
        cancel=cancel,
    )
    todo = [f for f in download_order(plan.files, plan.sizes) if not (plan.snapshot / f).is_symlink() and not (plan.snapshot / f).exists()]
    # a file whose blob is cached (e.g. from another revision) only needs its snapshot link
    have = {f: plan.storage / "blobs" / plan.blob_keys[f] for f in todo if f in plan.blob_keys and (plan.storage / "blobs" / plan.blob_keys[f]).is_file()}
    created: list[Path] = []
    unpacked = {f[: -len(".zip")] for f in plan.files if f.endswith(ZIPPED_PART)}

    def fetch(name: str) -> None:
        if name in have:
            link(target, name, have[name], created)
        else:
            download(target, remotes[name], tracker, plan.sha256.get(name), created)
        tracker.file_done(name)

    try:
        # every value the hub sends is checked before the first byte is downloaded
        missing = [f for f in todo if f not in have]
        remotes = _run_all(
            lambda name: head(target, name, endpoint=endpoint, size=plan.sizes.get(name), sha256=plan.sha256.get(name)),
            missing,
            tracker,
            max_workers,
        )
        if todo:  # from here the catalog lists the model as an incomplete download
            plan.snapshot.mkdir(parents=True, exist_ok=True)
        _run_all(fetch, [f for f in todo if f not in MARKER_FILES], tracker, max_workers)
        for name in plan.files:
            if name.endswith(ZIPPED_PART):
                part = plan.snapshot / name[: -len(".zip")]
                if not part.is_dir():
                    created.append(unpack_core_ml_zip(plan.snapshot / name, plan.snapshot))
        for name in todo:
            if name in MARKER_FILES:
                fetch(name)
        try:
            ensure_contained(plan.repo_id, plan.snapshot, plan.storage / "blobs", unpacked)
        except CacheEscape:
            _undo(plan, created, unpacked)
            raise
        _write_ref(plan)
    except AnechatError:
        raise
    except Exception as exc:  # mapped to typed errors
        raise hub_error(exc, plan.repo_id, plan.revision, endpoint) from None
    return PullResult(
        repo_id=plan.repo_id,
        commit=plan.commit,
        path=plan.snapshot,
        files=plan.files,
        downloaded_bytes=tracker.downloaded,
        total_bytes=plan.total_bytes,
        skipped=plan.skipped,
    )
