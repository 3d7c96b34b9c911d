"""The Core AI engine: ``.aimodel`` folders made by ``anechat convert --to coreai``, run by
``coreai.runtime`` (Apple's runtime; on Linux it executes on the CPU).

The session keeps ONE KV state across turns. Trimming the cache only moves the write
position back (keys beyond it are masked by the in-graph causal mask and overwritten
later), so turn 2 prefills only the tokens that are new. Sampling is numpy
(:class:`anechat.engines.coreml.sampling.Sampler`, the same rules as the Core ML engine).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

from anechat.engines.base import Availability, Engine, MemoryReport, ModelInfo, SamplingParams, Session
from anechat.engines.coreai.manifest import read_manifest
from anechat.engines.coreai.placement import runtime_label
from anechat.engines.coreml.sampling import Sampler
from anechat.engines.errors import BackendUnavailable, InvalidParameter, ModelNotFound
from anechat.engines.session import TokenSession
from anechat.engines.tokenizer import ChatTokenizer


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or refused: memory figures are best effort
        return 0


def runtime_version() -> str | None:
    try:
        from importlib import metadata

        return metadata.version("coreai-core")
    except Exception:
        return None


class CoreAISession(TokenSession):
    def __init__(self, info: ModelInfo, tokenizer: ChatTokenizer, runtime) -> None:
        super().__init__(info, tokenizer)
        self.runtime = runtime
        self.batch_size = runtime.manifest.batch_size
        self.state_length = runtime.manifest.context_length
        self._pos = 0  # tokens whose KV the state holds
        self._peak = 0

    # -- TokenSession primitives -----------------------------------------------------
    def _cache_length(self) -> int:
        return self._pos

    def _trim_cache(self, keep: int) -> None:
        self._pos = max(0, min(self._pos, keep))

    def _reset_peak_memory(self) -> None:
        self._peak = _rss()

    def _peak_memory(self) -> int:
        self._peak = max(self._peak, _rss())
        return self._peak

    def _prefill(self, ids: list[int]) -> None:
        """Whole batches through ``prefill`` (the tail padded: its KV lands past the write
        position, masked and overwritten later); what would run past the state, one by one."""
        batch, i = self.batch_size, 0
        while i < len(ids):
            chunk = ids[i : i + batch]
            if self._pos + batch <= self.state_length and len(chunk) > 1:
                self.runtime.prefill(chunk + [0] * (batch - len(chunk)), self._pos)
            else:
                chunk = chunk[:1]
                self.runtime.infer(chunk[0], self._pos)
            self._pos += len(chunk)
            i += len(chunk)

    def _stream(self, new_ids: list[int], context_ids: list[int], params: SamplingParams) -> Iterator[int]:
        # every prompt token but the last is prefilled; the last one's logits start decoding
        body, last = new_ids[:-1], new_ids[-1]
        if body:
            self._prefill(body)
        sampler = Sampler(params, context_ids)
        logits = self.runtime.infer(last, self._pos)
        self._pos += 1
        self._peak = max(self._peak, _rss())
        n = 0
        while True:
            token = sampler(logits)
            sampler.accept(token)
            yield token
            n += 1
            if self._pos >= self.state_length:
                return  # the window is full (the turn driver stops before this)
            logits = self.runtime.infer(token, self._pos)
            self._pos += 1
            if n % 32 == 0:
                self._peak = max(self._peak, _rss())

    def close(self) -> None:
        self.runtime.close()


class CoreAIEngine(Engine):
    name = "coreai"
    label = "Core AI"

    def __init__(self) -> None:
        self._session: CoreAISession | None = None

    @classmethod
    def available(cls) -> Availability:
        try:
            import coreai.runtime  # noqa: F401
        except ImportError as exc:
            return Availability(False, f'coreai-core is not installed ({exc}) — pip install "anechat[coreai]"')
        except Exception as exc:  # the native runtime refused to load on this platform
            return Availability(False, f"the Core AI runtime does not load here ({exc})")
        label = runtime_label()
        return Availability(True, f"coreai-core {runtime_version()} runs the model ({label}, {sys.platform})", label)

    def load(self, path: Path | str, *, context_length: int | None = None, progress=None) -> Session:
        folder = Path(path).expanduser()
        if not folder.exists():
            raise ModelNotFound(f"{folder} does not exist", hint="check the path, or list models with `anechat models`")
        if context_length is not None and context_length < 2:
            raise InvalidParameter(f"context_length={context_length} is invalid: use an integer >= 2")
        manifest = read_manifest(folder)
        avail = self.available()
        if not avail.ok:
            raise BackendUnavailable(avail.reason)
        tokenizer = ChatTokenizer(folder)
        self.unload()
        if progress is not None:
            progress(f"loading {folder.name} into Core AI", None)
        from anechat.engines.coreai.runtime import CoreAIRuntime

        runtime = CoreAIRuntime(folder, manifest)
        context = manifest.context_length if not context_length else min(context_length, manifest.context_length)
        info = ModelInfo(
            name=manifest.name or folder.name,
            path=folder,
            architecture=manifest.architecture,
            context_length=context,
            vocab_size=manifest.vocab_size,
            quantization=manifest.quantization,
            extra={
                "runtime": runtime.label,
                "batch_size": manifest.batch_size,
                "dtype": manifest.dtype,
                "compression": manifest.compression,
                "model_context_length": manifest.context_length,
                "entrypoints": list(manifest.entrypoints),
                "converter": manifest.converter,
            },
        )
        session = CoreAISession(info, tokenizer, runtime)
        session.memory_probe = self.snapshot_memory
        self._session = session
        self.snapshot_memory()
        return session

    def unload(self) -> None:
        if self._session is not None:
            self._session.close()
        self._session = None
        self.snapshot_memory()

    def measure_memory(self) -> MemoryReport:
        if self._session is None:
            return MemoryReport()
        rss = _rss()
        weights = sum(f.stat().st_size for f in (self._session.info.path / "model.aimodel").rglob("*") if f.is_file())
        return MemoryReport(
            model_bytes=weights or None,
            active_bytes=rss or None,
            peak_bytes=self._session._peak or None,
            cache_bytes=self._session.runtime.state_bytes() or None,
            details={"runtime": self._session.runtime.label, "process_rss_bytes": rss},
        )

    @property
    def session(self) -> Session | None:
        return self._session
