"""One loaded ``.aimodel``: its two functions, the KV state, and the event loop that drives them.

``coreai.runtime`` is asyncio-only. Each runtime owns a private event loop and drives it
with ``run_until_complete`` on the calling (engine) thread; calls release the GIL. The
state (one key and one value buffer per layer) lives in ``NDArray``\\ s the functions update
in place; trimming the cache only moves the caller's write position.

Aborts are made impossible by construction:
- interpreter exit with live models/functions can abort (rc 134): every runtime is
  released by an ``atexit`` hook (and by ``close()``) before Python tears down;
- calling a function without a running loop aborts: calls go only through :meth:`_run`;
- two index tensors into one stacked buffer abort: the converter's module never does it.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import os
import shutil
import sys
import tempfile
import threading
import weakref
from pathlib import Path

import numpy as np

from anechat.engines.coreai.manifest import ASSET, COMPILED, CoreAIManifest
from anechat.engines.coreai.placement import runtime_label, specialization
from anechat.engines.errors import EngineError, ModelFormatError

_LIVE: "weakref.WeakSet[CoreAIRuntime]" = weakref.WeakSet()
_DTYPES = {"fp32": np.float32, "fp16": np.float16}


def release_all() -> None:
    """Release every live runtime (the atexit hook; also safe to call by hand)."""
    for runtime in list(_LIVE):
        runtime.close()
    gc.collect()


atexit.register(release_all)


@contextlib.contextmanager
def _native_stderr_quiet():
    """The native runtime logs "Loading function ..." on fd 2: keep the terminal clean while loading."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _state_dtype(dtype: str):
    if dtype == "bf16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return _DTYPES.get(dtype, np.float32)


class CoreAIRuntime:
    def __init__(self, folder: Path, manifest: CoreAIManifest) -> None:
        from coreai.runtime import NDArray

        self.folder, self.manifest = Path(folder), manifest
        self.label = runtime_label()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = asyncio.new_event_loop()
        self._scratch: str | None = None  # a compile made at load time when the folder has no cache
        try:
            self._model = self._run(self._load())
        except Exception as exc:
            self.close()
            raise ModelFormatError(f"Core AI cannot load {self.folder.name}: {exc}", hint="convert the model again") from None
        try:
            with _native_stderr_quiet():
                self._functions = {name: self._model.load_function(name) for name in ("prefill", "infer")}
        except KeyError as exc:
            self.close()
            raise ModelFormatError(f"{self.folder / ASSET} lacks a function: {exc}", hint="convert the model again") from None
        dtype = _state_dtype(manifest.state_dtype)
        self._arrays = {name: np.zeros(manifest.state_shape, dtype=dtype) for name in manifest.state_names}
        self.state = {name: NDArray(array) for name, array in self._arrays.items()}
        _LIVE.add(self)

    async def _load(self):
        from coreai.runtime import AIModel

        options = specialization()
        if options is not None:  # macOS 27 with the OS framework: untested on this build
            return await AIModel.load(self.folder / ASSET, specialization_options=options)
        compiled = self.folder / COMPILED
        if not (compiled / "main-universal.odix").is_file():  # no cache (an old folder): compile per load
            from anechat.engines.coreai.compiled import write_compiled

            self._scratch = tempfile.mkdtemp(prefix="anechat-coreai-")
            compiled = Path(self._scratch) / COMPILED
            await asyncio.to_thread(write_compiled, self.folder / ASSET, compiled)
        return await AIModel.load(compiled)

    def _run(self, coro):
        if self._loop is None:
            coro.close()
            raise EngineError("the Core AI model was released", hint="load the model again")
        with self._lock:
            return self._loop.run_until_complete(coro)

    def _call(self, function: str, ids: np.ndarray, pos: int) -> np.ndarray:
        from coreai.runtime import NDArray

        if self._loop is None:
            raise EngineError("the Core AI model was released", hint="load the model again")
        inputs = {"input_ids": NDArray(ids.astype(np.int32, copy=False)), "current_pos": NDArray(np.array([pos], dtype=np.int32))}
        out = self._run(self._functions[function](inputs, state=self.state))
        return next(iter(out.values())).numpy()

    def infer(self, token: int, pos: int) -> np.ndarray:
        """Logits (vocab,) float32 for ``token`` at position ``pos``; writes its KV."""
        return np.array(self._call("infer", np.array([[token]], dtype=np.int32), pos), dtype=np.float32).reshape(-1)

    def prefill(self, ids: list[int], pos: int) -> np.ndarray:
        """Write the KV of exactly ``batch_size`` tokens starting at ``pos``; their logits (batch, vocab)."""
        out = self._call("prefill", np.asarray([ids], dtype=np.int32), pos)
        return np.asarray(out, dtype=np.float32).reshape(len(ids), -1)

    def state_bytes(self) -> int:
        return sum(a.nbytes for a in getattr(self, "_arrays", {}).values())

    def close(self) -> None:
        """Release the functions, the model and the state, then the loop. Idempotent."""
        with self._lock:
            self._functions = {}
            self.state, self._arrays = {}, {}
            self._model = None
            gc.collect()
            if self._loop is not None:
                self._loop.close()
                self._loop = None
        if self._scratch:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
        _LIVE.discard(self)
