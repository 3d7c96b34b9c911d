"""How many BLAS threads numpy uses while the executor runs (default: one).

A decode step is a chain of small matrix-vector products, where BLAS worker
threads only add hand-off latency; and on a busy machine (or one shared with the
UI and the other engine) extra threads mostly wait for a core. Measured on a
loaded 2-core x86 box, one thread decoded and prefilled 2-4x faster than two.
``ANECHAT_MIL_THREADS=N`` changes it (0 = leave BLAS alone); so does setting
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` yourself.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

ENV = "ANECHAT_MIL_THREADS"
_controllers: list | None = None


def configured_threads() -> int:
    """0 means: do not touch BLAS threads."""
    if os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS"):
        return 0
    try:
        return max(0, int(os.environ.get(ENV, "1")))
    except ValueError:
        return 1


def _numpy_blas() -> list:
    global _controllers
    if _controllers is None:
        _controllers = []
        try:
            import numpy  # noqa: F401  (its BLAS must be loaded to be found)
            from threadpoolctl import ThreadpoolController

            _controllers = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas" and "numpy" in c.filepath]
        except Exception:  # threadpoolctl missing, or a BLAS it cannot drive: leave threads alone
            _controllers = []
    return _controllers


@contextmanager
def blas_threads(n: int | None = None) -> Iterator[None]:
    """Run the block with numpy's BLAS on ``n`` threads (default: :func:`configured_threads`)."""
    n = configured_threads() if n is None else n
    libs = _numpy_blas() if n > 0 else []
    before = [c.num_threads for c in libs]
    for c in libs:
        c.set_num_threads(n)
    try:
        yield
    finally:
        for c, old in zip(libs, before):
            c.set_num_threads(old)
