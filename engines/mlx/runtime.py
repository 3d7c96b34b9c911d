"""MLX platform plumbing, in one place: what MLX runs on here (device, BLAS), the
stream generation runs on, releasing a thread's streams, and MLX errors that mean
"out of memory".

Importing this module imports nothing of MLX; ``mlx.core`` is imported on first
use, and ``mlx_lm`` (it pulls in ``transformers``) by the engine when a model is
loaded. Importing it registers :func:`release_thread_streams` with
:func:`anechat.engines.threads.on_thread_end`.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import lru_cache

from anechat.engines.base import Availability
from anechat.engines.threads import on_thread_end

_PIP_HINT_LINUX = 'pip install "mlx[cpu]" mlx-lm   (or: pip install "anechat[mlx]")'
_PIP_HINT_MAC = 'pip install mlx mlx-lm   (or: pip install "anechat[mlx]")'
_OOM_MARKERS = ("out of memory", "insufficient memory", "unable to allocate", "attempting to allocate", "bad_alloc")


def pip_hint() -> str:
    return _PIP_HINT_MAC if sys.platform == "darwin" else _PIP_HINT_LINUX


def availability() -> Availability:
    """MLX is usable when ``mlx.core`` imports and ``mlx_lm`` is installed."""
    try:
        import mlx.core as mx
    except ImportError as exc:
        return Availability(False, f"MLX is not installed ({exc}); install it with: {pip_hint()}")
    if importlib.util.find_spec("mlx_lm") is None:
        return Availability(False, f"mlx-lm is not installed; install it with: {pip_hint()}")
    label = runtime_label()
    return Availability(True, f"{label} (mlx {mx.__version__}, mlx-lm {_mlx_lm_version()})", runtime=label)


def _mlx_lm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlx-lm")
    except PackageNotFoundError:
        return "?"


def on_cpu() -> bool:
    import mlx.core as mx

    return mx.default_device().type == mx.cpu


def runtime_label() -> str:
    """Short label for the UI: "MLX · Metal GPU", "MLX · CPU (OpenBLAS)", ..."""
    if not on_cpu():
        return "MLX · Metal GPU" if sys.platform == "darwin" else "MLX · CUDA GPU"
    return f"MLX · CPU ({blas_name()})"


def blas_name() -> str:
    """Which BLAS MLX's CPU backend calls, read from what this process has mapped:
    "Accelerate" on macOS, "OpenBLAS" or "MKL" when one was preloaded, else MLX's
    bundled "reference BLAS" ("unknown BLAS" where the maps cannot be read)."""
    if sys.platform == "darwin":
        return "Accelerate"
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            for line in maps:
                if "libopenblas" in line:
                    return "OpenBLAS"
                if "libmkl" in line:
                    return "MKL"
    except OSError:
        return "unknown BLAS"
    return "reference BLAS"


@lru_cache(maxsize=None)
def generation_stream():
    """The one stream every MLX computation of anechat runs on, from any thread.

    mlx-lm's default ``generation_stream`` is thread-local: a worker thread that
    used it leaves a stream behind whose destruction at interpreter exit aborts
    the process ("terminate called without an active exception") unless the
    thread calls ``mx.clear_streams()`` — and after that call the thread-local
    stream is gone for good in that thread. A stream made with
    ``new_thread_unsafe_stream`` can be used by any thread and is torn down
    cleanly; the session runs one generation at a time, which is the
    synchronisation it asks for.
    """
    import mlx.core as mx

    make = getattr(mx, "new_thread_unsafe_stream", None)
    if make is None:  # mlx < 0.30: streams are not thread-local
        return mx.new_stream(mx.default_device())
    return make(mx.default_device())


def release_thread_streams() -> None:
    """Destroy the MLX streams the calling thread created, if MLX is loaded at all.

    Importing ``mlx_lm.generate`` creates a stream at module level, in whichever
    thread imports it first. A thread that still owns streams when it ends makes
    the process abort at exit ("terminate called without an active exception"),
    so every thread that ran MLX calls this last (through
    :func:`anechat.engines.threads.release_engine_thread`). :func:`generation_stream`
    is not thread-local and survives it.
    """
    mx = sys.modules.get("mlx.core")
    clear = getattr(mx, "clear_streams", None)
    if clear is not None:
        clear()


on_thread_end(release_thread_streams)


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether an exception raised by MLX means an allocation failed."""
    if isinstance(exc, MemoryError):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and any(marker in text for marker in _OOM_MARKERS)
