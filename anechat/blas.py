"""Fast matrix maths by default on Linux: run with Debian's OpenBLAS preloaded.

The mlx CPU wheel bundles a reference BLAS that is tens of times slower than
OpenBLAS for matmuls. When Debian's ``libopenblas0-pthread`` is installed, the
entry point re-executes itself once with it in ``LD_PRELOAD`` (so mlx's BLAS
calls resolve to OpenBLAS). ``ANECHAT_NO_BLAS_PRELOAD=1`` turns this off.

Which BLAS is in use is probed once, by the MLX engine's runtime
(:func:`anechat.engines.mlx.runtime.blas_name`); this module adds the advice.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

OFF_ENV = "ANECHAT_NO_BLAS_PRELOAD"
_MARK_ENV = "ANECHAT_BLAS_REEXEC"
_CANDIDATES = (
    "/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/x86_64-linux-gnu/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0",
    "/usr/lib/aarch64-linux-gnu/libopenblas.so.0",
)


def openblas_path() -> Path | None:
    for candidate in _CANDIDATES:
        if Path(candidate).is_file():
            return Path(candidate)
    return None


def _preloaded() -> bool:
    return "openblas" in os.environ.get("LD_PRELOAD", "")


def ensure_fast_blas() -> None:
    """Re-execute this process once with OpenBLAS preloaded, when that helps and is possible."""
    if not sys.platform.startswith("linux") or os.environ.get(OFF_ENV) or os.environ.get(_MARK_ENV):
        return
    if _preloaded():
        return
    lib = openblas_path()
    if lib is None:
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = f"{lib}:{env['LD_PRELOAD']}" if env.get("LD_PRELOAD") else str(lib)
    env[_MARK_ENV] = "1"
    argv = list(getattr(sys, "orig_argv", []) or [sys.executable, *sys.argv])
    argv[0] = sys.executable
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        os.execve(sys.executable, argv, env)
    except OSError:
        return  # carry on with the slow BLAS rather than fail


def blas_in_use() -> str:
    """One line for `anechat doctor` and the bench records."""
    from anechat.engines.mlx.runtime import blas_name

    name = blas_name()
    if name == "Accelerate":
        return "Accelerate (macOS)"
    if not sys.platform.startswith("linux"):
        return name
    if name == "OpenBLAS":
        return "OpenBLAS (Debian libopenblas0-pthread, preloaded)"
    if name != "reference BLAS":
        return name
    if os.environ.get(OFF_ENV):
        return f"mlx's bundled reference BLAS (slow; {OFF_ENV} is set)"
    if openblas_path() is None:
        return "mlx's bundled reference BLAS (slow; apt-get install libopenblas0-pthread)"
    return "mlx's bundled reference BLAS (slow; OpenBLAS is installed but not preloaded in this process)"
