"""``anechat models pull REPO[@REVISION]``: download a model from the Hugging Face hub.

Where: into the Hugging Face cache (``HF_HUB_CACHE`` / ``HF_HOME``), the same place
``mlx_lm`` and ``transformers`` use, so a model pulled here is shared with them and
listed by the catalog under its short name.

How (all through ``huggingface_hub``):

1. ``model_info(files_metadata=True)``: the commit, every file and its size.
2. Keep only the files a model needs (:mod:`anechat.hub.select`).
3. Check free disk space against the bytes not yet in the cache.
4. ``hf_hub_download`` each file at that commit, largest first, ``config.json`` /
   ``meta.yaml`` last, so an interrupted pull never looks like a complete model.
   A connection cut mid-file resumes with an HTTP Range request; files finished
   before an interruption (Ctrl+C, lost network) are kept, and pulling again
   downloads only what is missing. (huggingface_hub 2.x discards the partial file
   of the one file in flight when the process stops.)
5. Record ``refs/<revision>`` so the catalog and offline use find the snapshot.

Errors are one line each: not found (404), gated / unauthorised (401/403),
offline (``HF_HUB_OFFLINE=1`` or no network), not enough disk space.
"""

from __future__ import annotations

import os
import shutil
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from anechat.engines.errors import AnechatError, ModelNotFound

from anechat.hub.errors import (  # noqa: F401  (re-exported: callers catch these from anechat.hub.pull)
    HubOffline,
    HubUnauthorized,
    NotEnoughSpace,
    PullCancelled,
    PullError,
    RepoGated,
    hub_error,
    offline_error,
)
from anechat.hub.select import MARKER_FILES, ZIPPED_PART, download_order, has_usable_files, select_files, unpack_core_ml_zip

_TRUE = ("1", "on", "yes", "true")


@dataclass(frozen=True)
class PullProgress:
    done_bytes: int
    total_bytes: int
    current_file: str
    files_done: int
    files_total: int


ByteProgress = Callable[[PullProgress], None]


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
        raise ModelNotFound(f"'{spec}' is not a hub repo id", hint="use owner/name, e.g. mlx-community/SmolLM2-135M-Instruct-4bit")
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
    sizes = {s.rfilename: s.size for s in siblings}
    keys = {s.rfilename: (s.lfs.sha256 if s.lfs is not None else s.blob_id) for s in siblings}
    files, skipped = select_files([s.rfilename for s in siblings])
    if not has_usable_files(files):
        listed = ", ".join(sorted(sizes)[:6]) or "nothing"
        raise PullError(
            f"{repo_id} has no safetensors weights or Core ML model (it holds: {listed})",
            hint="anechat runs safetensors (MLX / Hugging Face) and ANEMLL Core ML repos; for a GGUF, download the file and use anechat convert",
        )
    cache = Path(cache_dir) if cache_dir else hf_cache_dir()
    plan = PullPlan(repo_id, revision or "main", str(info.sha), files, sizes, set(), skipped, cache, info.gated)
    for name in files:
        key = keys.get(name)
        if (plan.snapshot / name).exists() or (key and (plan.storage / "blobs" / key).exists()):
            plan.cached.add(name)
    return plan


class _Tracker:
    """Sums the bytes every file download reports (several threads) and reports them."""

    def __init__(self, plan: PullPlan, progress: ByteProgress | None, cancel: threading.Event | None) -> None:
        self.abort = threading.Event()  # set when another file failed or the caller was interrupted
        self.lock = threading.Lock()
        self.total = plan.total_bytes
        self.done = sum(plan.sizes.get(f) or 0 for f in plan.cached)
        self.files_total = len(plan.files)
        self.files_done = sum(1 for f in plan.files if (plan.snapshot / f).exists())
        self.downloaded = 0
        self.current = ""
        self.progress = progress
        self.cancel = cancel

    def add(self, n: int, name: str | None = None) -> None:
        self.check()
        with self.lock:
            self.done += n
            self.downloaded += n
            if name:
                self.current = name
            snapshot = PullProgress(max(0, self.done), self.total, self.current, self.files_done, self.files_total)
        if self.progress is not None:
            self.progress(snapshot)

    def check(self) -> None:
        if self.abort.is_set() or (self.cancel is not None and self.cancel.is_set()):
            raise PullCancelled("pull cancelled; finished files are kept")

    def file_done(self, name: str) -> None:
        with self.lock:
            self.files_done += 1
        self.add(0, name)

    def bar_class(self, name: str) -> type:
        tracker = self

        class _Bar:  # the small part of tqdm's interface huggingface_hub uses
            def __init__(self, *args, **kwargs) -> None:
                self.n = kwargs.get("initial") or 0
                self.total = kwargs.get("total")
                tracker.add(0, name)

            def update(self, n: int | float | None = 1) -> None:
                self.n += int(n or 0)
                tracker.add(int(n or 0), name)

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                return None

            def __getattr__(self, attr: str):  # close, refresh, set_postfix_str, update_transfer, ...
                return lambda *a, **k: None

        return _Bar


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
    from huggingface_hub import hf_hub_download

    from anechat import __version__

    tracker = _Tracker(plan, progress, cancel)
    # a file whose blob is cached (e.g. from another revision) still needs its snapshot link:
    # hf_hub_download makes it without downloading
    todo = [f for f in download_order(plan.files, plan.sizes) if not (plan.snapshot / f).exists()]
    body = [f for f in todo if f not in MARKER_FILES]
    markers = [f for f in todo if f in MARKER_FILES]

    def fetch(name: str) -> None:
        tracker.check()
        hf_hub_download(
            plan.repo_id,
            name,
            revision=plan.commit,
            cache_dir=str(plan.cache_dir),
            endpoint=endpoint,
            token=token,
            library_name="anechat",
            library_version=__version__,
            tqdm_class=tracker.bar_class(name),
        )
        tracker.file_done(name)

    try:
        if body:
            pool = ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(body))))
            try:
                futures = [pool.submit(fetch, name) for name in body]
                wait(futures, return_when=FIRST_EXCEPTION)
                for future in futures:
                    if future.done() and future.exception() is not None:
                        raise future.exception()  # type: ignore[misc]
            except BaseException:
                # stop the other downloads at their next chunk (Ctrl+C must not wait for them)
                tracker.abort.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
            pool.shutdown()
        for name in plan.files:
            if name.endswith(ZIPPED_PART):
                unpack_core_ml_zip(plan.snapshot / name, plan.snapshot)
        for name in markers:
            fetch(name)
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
