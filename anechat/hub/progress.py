"""Byte progress of a pull summed over its download threads, and the per-file size limit.

huggingface_hub's ``http_get`` reports every chunk to a tqdm-like bar *before* it writes
the chunk; the bar made here raises as soon as a file's bytes pass the size the hub
announced, so an endless answer for a small file stops at once and never reaches the disk.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from anechat.hub.checks import shown
from anechat.hub.errors import DownloadMismatch, PullCancelled


@dataclass(frozen=True)
class PullProgress:
    done_bytes: int
    total_bytes: int
    current_file: str
    files_done: int
    files_total: int


ByteProgress = Callable[[PullProgress], None]


class Tracker:
    """Sums the bytes every file download reports (several threads) and reports them."""

    def __init__(
        self,
        repo_id: str,
        *,
        total: int,
        done: int,
        files_total: int,
        files_done: int,
        progress: ByteProgress | None,
        cancel: threading.Event | None,
    ) -> None:
        self.repo_id = repo_id
        self.abort = threading.Event()  # set when another file failed or the caller was interrupted
        self.lock = threading.Lock()
        self.total = total
        self.done = done
        self.files_total = files_total
        self.files_done = files_done
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

    def bar_class(self, name: str, limit: int) -> type:
        """A bar for ``http_get`` that counts ``name``'s bytes and stops past ``limit``."""
        tracker = self

        class _Bar:  # the small part of tqdm's interface huggingface_hub uses
            def __init__(self, *args, **kwargs) -> None:
                self.n = kwargs.get("initial") or 0
                tracker.add(0, name)

            def update(self, n: int | float | None = 1) -> None:
                n = int(n or 0)
                self.n += n
                if self.n > limit:
                    raise DownloadMismatch(
                        f"{tracker.repo_id}: the hub sent more than the {limit} bytes it announced for {shown(name)}; "
                        "the download was stopped and nothing was kept",
                        hint="the hub or a proxy in between is broken; try again later",
                    )
                tracker.add(n, name)

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                return None

            def __getattr__(self, attr: str):  # close, refresh, set_postfix_str, update_transfer, ...
                return lambda *a, **k: None

        return _Bar
