"""BLAS threads for the executor: one thread for single-token work.

A one-token step is a chain of small matrix-vector products; BLAS worker threads
only add hand-off latency there (and, on a busy machine, wait for a core), so a
decode step runs numpy's BLAS on one thread. Batched prefill keeps the default.
``OPENBLAS_NUM_THREADS`` / ``OMP_NUM_THREADS`` set by the user are left alone.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

_controllers: list | None = None


def _numpy_blas() -> list:
    global _controllers
    if _controllers is None:
        _controllers = []
        if not (os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")):
            try:
                import numpy  # noqa: F401  (its BLAS must be loaded to be found)
                from threadpoolctl import ThreadpoolController

                _controllers = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas" and "numpy" in c.filepath]
            except Exception:  # threadpoolctl missing or a BLAS it cannot drive: leave threads alone
                _controllers = []
    return _controllers


@contextmanager
def single_blas_thread() -> Iterator[None]:
    libs = _numpy_blas()
    before = [c.num_threads for c in libs]
    for c in libs:
        c.set_num_threads(1)
    try:
        yield
    finally:
        for c, n in zip(libs, before):
            c.set_num_threads(n)
