"""Run a model conversion in a child Python process.

torch, coremltools and mlx hold the GIL for long stretches, so a conversion in a
thread of the app makes the chat stutter, and one mlx-lm call cannot be stopped
half-way. Here the child (``python -m anechat.convert.child``, which imports
no UI) resolves the model and calls :func:`anechat.convert.jobs.convert_model`; it
writes one JSON line per event to a pipe: ``{"progress": [step, fraction]}``, then
``{"done": path}`` or ``{"error": message, "hint": ..., "kind": ...}``.

The parent relays progress as it comes and polls ``cancel``; on cancel (or when its
``progress`` callback raises) it terminates the child, removes the hidden scratch
folders the child left beside the target and raises. A finished folder is never
removed. The child exits by itself when the parent dies (its stdin closes).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from anechat.convert.jobs import ConvertRequest, default_out
from anechat.convert.errors import ConversionCancelled, ConversionFailed
from anechat.engines.errors import (
    AnechatError,
    BackendUnavailable,
    InvalidParameter,
    ModelFormatError,
    ModelNotFound,
    OutOfMemory,
)

POLL_S = 0.1
#: seconds between SIGTERM and SIGKILL when a child is stopped
GRACE_S = 3.0
#: the child reports an error by its ``kind``; the parent raises the same class again
_KINDS: dict[str, type[AnechatError]] = {
    cls.kind: cls
    for cls in (ModelNotFound, ModelFormatError, InvalidParameter, BackendUnavailable, OutOfMemory)
}


def _scratch(target: Path, pid: int | None = None) -> set[Path]:
    """Hidden work folders beside ``target``: the converters' temp folders (``.<name>.partial-*``,
    ``.<name>.converting-*``) and, with ``pid``, the GGUF importer's (``.*.partial-<pid>-*``)."""
    from anechat.paths import models_dir

    found: set[Path] = set()
    for kind in ("partial", "converting"):
        found.update(target.parent.glob(f".{target.name}.{kind}-*"))
    if pid is not None:
        for folder in {target.parent, models_dir()}:
            found.update(folder.glob(f".*.partial-{pid}-*"))
    return found


def _remove_new_scratch(target: Path, before: set[Path], pid: int) -> None:
    """Remove the scratch folders that were not there ``before`` (never ``target`` itself)."""
    for _ in range(3):  # a writer may still be adding files while we remove them
        for folder in _scratch(target, pid) - before:
            shutil.rmtree(folder, ignore_errors=True)
        if not _scratch(target, pid) - before:
            return


def _child_env() -> dict[str, str]:
    """The parent's environment, with OpenBLAS preloaded on Linux as the CLI does (see blas.py)."""
    from anechat.blas import OFF_ENV, openblas_path

    env = dict(os.environ)
    lib = openblas_path() if sys.platform.startswith("linux") and not env.get(OFF_ENV) else None
    if lib is not None and "openblas" not in env.get("LD_PRELOAD", ""):
        env["LD_PRELOAD"] = f"{lib}:{env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else str(lib)
    return env


def _stop(child: subprocess.Popen) -> None:
    if child.poll() is None:
        child.terminate()
        try:
            child.wait(GRACE_S)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _raise_error(message: dict) -> None:
    kind = message.get("kind") or ConversionFailed.kind
    cls = _KINDS.get(kind)
    if cls is None:  # a kind without its own class here: a failure that keeps the child's kind
        raise ConversionFailed(str(message["error"]), message.get("hint"), kind)
    raise cls(str(message["error"]), hint=message.get("hint"))


def convert_in_child(
    model_ref: str,
    request: ConvertRequest,
    progress: Callable[[str, float | None], None],
    cancel: threading.Event,
    out: Path | None = None,
) -> Path:
    """Convert ``model_ref`` (a catalog name or a path) as ``request`` says, in a child process,
    into ``out`` (default: :func:`default_out` of the model's catalog name); returns the folder.

    Raises ConversionCancelled once ``cancel`` is set (or whatever ``progress`` raises), the
    child's own error type with its message, or ConversionFailed — one line each.
    """
    if out is None:
        from anechat.catalog import lookup_model

        out = default_out(lookup_model(model_ref).name, request)
    target = Path(out).expanduser().absolute()
    before = _scratch(target)
    job = json.dumps({"model": model_ref, "request": asdict(request), "out": str(target)})
    read_fd, write_fd = os.pipe()
    try:
        child = subprocess.Popen(
            [sys.executable, "-m", "anechat.convert.child", str(write_fd), job],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(write_fd,), env=_child_env(), start_new_session=True,
        )
    except OSError as exc:
        os.close(read_fd)
        raise ConversionFailed(f"could not start the conversion process: {exc}") from None
    finally:
        os.close(write_fd)
    last: dict = {}
    try:
        with os.fdopen(read_fd, "rb", buffering=0) as pipe:
            pending = b""
            while True:
                if cancel.is_set() and "done" not in last:
                    raise ConversionCancelled("conversion cancelled")
                if not select.select([pipe], [], [], POLL_S)[0]:
                    continue
                chunk = pipe.read(65536)
                if not chunk:
                    break  # the child has closed its end: it ended
                *lines, pending = (pending + chunk).split(b"\n")
                for line in lines:
                    last = json.loads(line)
                    if "progress" in last:
                        progress(*last["progress"])
        code = child.wait()
    except BaseException:
        _stop(child)
        _remove_new_scratch(target, before, child.pid)
        raise
    finally:
        if child.stdin is not None:
            child.stdin.close()
    if "done" in last:
        return Path(last["done"])
    _remove_new_scratch(target, before, child.pid)
    if "error" in last:
        _raise_error(last)
    hint = "it may have run out of memory" if code < 0 else None
    raise ConversionFailed(f"the conversion process ended unexpectedly (exit status {code})", hint=hint)


# -- the child ---------------------------------------------------------------------------
def _exit_with_parent(target: Path, before: set[Path]) -> None:
    """Block until stdin closes (the parent died without stopping us), then clean up and leave."""
    try:
        while os.read(0, 4096):  # unbuffered: a blocked buffered read would hang the exit
            pass
        _remove_new_scratch(target, before, os.getpid())
    finally:
        os._exit(3)


def _child(write_fd: int, job: dict) -> int:
    target = Path(job["out"])
    watcher = threading.Thread(target=_exit_with_parent, args=(target, _scratch(target, os.getpid())), daemon=True)
    watcher.start()
    with os.fdopen(write_fd, "w", encoding="utf-8") as pipe:

        def send(**message: object) -> None:
            pipe.write(json.dumps(message) + "\n")
            pipe.flush()

        try:
            from anechat.catalog import resolve_model
            from anechat.convert.jobs import convert_model

            entry = resolve_model(job["model"])
            request = ConvertRequest(**job["request"])
            path = convert_model(entry, request, target, progress=lambda step, fraction=None: send(progress=[step, fraction]))
        except AnechatError as exc:
            send(error=exc.message, hint=exc.hint, kind=exc.kind)
            return 1
        except MemoryError:
            send(error="out of memory while converting", kind=OutOfMemory.kind)
            return 1
        except BaseException as exc:  # noqa: BLE001 - one line back, never a traceback
            send(error=f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
            return 1
        send(done=str(path))
    return 0


if __name__ == "__main__":
    sys.exit(_child(int(sys.argv[1]), json.loads(sys.argv[2])))
