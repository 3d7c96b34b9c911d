"""Long work of the models screen (pull, convert) as background jobs: each runs in its own
thread and reports through thread-safe messages at a bounded rate; a JobRow shows one
job's title, a progress bar and its current step or its outcome."""

from __future__ import annotations

import itertools
import threading
import time
from typing import Any, Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Label, ProgressBar

_ids = itertools.count(1)


class JobCancelled(Exception):
    """Raised inside a job's thread at its next progress report once cancel is asked."""


class JobProgress(Message):
    def __init__(self, job_id: int, step: str, fraction: float | None) -> None:
        super().__init__()
        self.job_id = job_id
        self.step = step
        self.fraction = fraction


class JobDone(Message):
    """A job ended: ``result`` (what its work returned) when it worked, else ``error`` (one
    line), or ``cancelled`` when it was stopped."""

    def __init__(self, job_id: int, result: Any = None, error: str | None = None, cancelled: bool = False) -> None:
        super().__init__()
        self.job_id = job_id
        self.result = result
        self.error = error
        self.cancelled = cancelled


class Job:
    """One background job; ``report(step, fraction)`` is the progress callback its work gets."""

    def __init__(self, kind: str, title: str, post: Callable[[Message], object], rate_hz: float = 5.0) -> None:
        self.id = next(_ids)
        self.kind = kind
        self.title = title
        self.cancel = threading.Event()
        self.running = True
        self._post = post
        self._period = 1.0 / rate_hz
        self._last = 0.0
        self._last_step = ""

    def report(self, step: str, fraction: float | None = None) -> None:
        """Post progress (at most ``rate_hz`` a second, plus every new step); raise JobCancelled once
        cancelled (not at the final report: the work is complete by then)."""
        if self.cancel.is_set() and fraction != 1.0:
            raise JobCancelled(f"{self.title}: cancelled")
        now = time.monotonic()
        if step == self._last_step and now - self._last < self._period and fraction != 1.0:
            return
        self._last, self._last_step = now, step
        self._post(JobProgress(self.id, step, fraction))

    def start(self, work: Callable[["Job"], Any], error_line: Callable[[BaseException], str], cleanup: Callable[[], None] | None = None) -> None:
        """Run ``work(self)`` in a thread of its own (so thread-local state such as MLX
        streams can be released when it ends); the outcome is posted as JobDone."""

        def run() -> None:
            done: JobDone
            try:
                result = work(self)
            except Exception as exc:  # one line in the app, never a crash
                if self.cancel.is_set():  # whatever stopped it, it was asked to stop
                    done = JobDone(self.id, cancelled=True)
                else:
                    done = JobDone(self.id, error=error_line(exc))
            else:
                done = JobDone(self.id, result=result)
            finally:
                if cleanup is not None:
                    try:
                        cleanup()
                    except Exception:
                        pass
            self.running = False
            self._post(done)

        threading.Thread(target=run, name=f"anechat-{self.kind}-{self.id}", daemon=True).start()


class JobRow(Horizontal):
    """``title  [bar]  step`` while running; the outcome in place of the step when done."""

    def __init__(self, job: Job) -> None:
        super().__init__(classes="job-row", id=f"job-{job.id}")
        self.job = job
        self.step = "starting…"
        self.fraction: float | None = None
        self.outcome: str | None = None  # "done" | "error" | "cancelled" once finished

    def compose(self) -> ComposeResult:
        yield Label(Text(self.job.title, style="bold"), classes="job-title")
        yield ProgressBar(total=None, show_eta=False, classes="job-bar")
        yield Label(Text(self.step), classes="job-step")

    def show(self, step: str, fraction: float | None) -> None:
        self.step, self.fraction = step, fraction
        bar = self.query_one(ProgressBar)
        if fraction is None:
            bar.update(total=None)
        else:
            bar.update(total=100, progress=max(0.0, min(1.0, fraction)) * 100)
        self.query_one(".job-step", Label).update(Text(step))

    def finish(self, outcome: str, line: str) -> None:
        self.outcome, self.step = outcome, line
        bar = self.query_one(ProgressBar)
        if outcome == "done":
            bar.update(total=100, progress=100)
        elif bar.total is None:
            bar.update(total=100, progress=0)
        self.add_class(outcome)
        self.query_one(".job-step", Label).update(Text(line))
