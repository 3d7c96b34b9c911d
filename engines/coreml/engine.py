"""The Core ML engine: ANEMLL-layout folders, run by Core ML on macOS or the MIL executor elsewhere.

``CoreMLEngine.available()`` says which runtime runs here (the label the UI shows);
``load(folder)`` reads meta.yaml, loads the parts and returns a :class:`CoreMLSession`.

The session keeps ONE KV state across turns. Trimming the cache only moves the
write position back (KV beyond it is masked by the causal mask and overwritten
later), so turn 2 prefills only the tokens that are new.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Iterator

from anechat.engines.base import Availability, Engine, MemoryReport, ModelInfo, SamplingParams, Session
from anechat.engines.errors import BackendUnavailable, InvalidParameter, ModelFormatError, ModelNotFound
from anechat.engines.session import TokenSession
from anechat.engines.tokenizer import ChatTokenizer
from anechat.engines.coreml.anemll import read_layout
from anechat.engines.coreml.forward import ForwardPass
from anechat.engines.coreml.runtime_base import CoreMLRuntime, ProgressCallback
from anechat.engines.coreml.sampling import Sampler

#: ANECHAT_COREML_RUNTIME=mil forces the MIL executor even on macOS (debugging, comparisons)
RUNTIME_ENV = "ANECHAT_COREML_RUNTIME"


def _rss() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except Exception:  # psutil missing or refused: memory figures are best effort
        return 0


def choose_runtime() -> tuple[type[CoreMLRuntime] | None, Availability]:
    if importlib.util.find_spec("coremltools") is None:  # imported only when a part needs it
        return None, Availability(False, "coremltools is not installed — pip install \"anechat[coreml]\"")
    from anechat.engines.coreml.runtime_macos import MacOSRuntime, coreml_prediction_available
    from anechat.engines.coreml.runtime_mil import MILRuntime

    ok, why = coreml_prediction_available()
    forced = os.environ.get(RUNTIME_ENV, "").strip().lower()
    if ok and forced != "mil":
        return MacOSRuntime, Availability(True, "Core ML runs the model (compute units CPU_AND_NE)", MacOSRuntime.label)
    reason = f"{why}: the MIL executor runs the Core ML programs with numpy on the CPU" if not ok else f"{RUNTIME_ENV}=mil: the MIL executor runs the model on the CPU"
    return MILRuntime, Availability(True, reason, MILRuntime.label)


class CoreMLSession(TokenSession):
    def __init__(self, info: ModelInfo, tokenizer: ChatTokenizer, forward: ForwardPass) -> None:
        super().__init__(info, tokenizer)
        self.forward = forward
        self._pos = 0  # tokens whose KV the state holds
        self._peak = 0
        #: keep the start of the conversation + the recent half when a prompt would not fit
        self.context_shift = True

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

    def _stream(self, new_ids: list[int], context_ids: list[int], params: SamplingParams) -> Iterator[int]:
        # every prompt token but the last is prefilled in batches; the last one's logits start decoding
        body, last = new_ids[:-1], new_ids[-1]
        if body:
            self.forward.prefill(body, self._pos, on_progress=self._advance)
        sampler = Sampler(params, context_ids)
        out = self.forward.infer(last, self._pos)
        self._pos += 1
        self._peak = max(self._peak, _rss())
        n = 0
        while True:
            token = out if isinstance(out, int) else sampler(out)  # argmax-in-model parts pick the token
            sampler.accept(token)
            yield token
            n += 1
            if self._pos >= self.forward.context_length:
                return  # the window is full (the turn driver stops before this)
            out = self.forward.infer(token, self._pos)
            self._pos += 1
            if n % 32 == 0:
                self._peak = max(self._peak, _rss())

    def _advance(self, pos: int) -> None:
        self._pos = pos

    def reset(self) -> None:
        super().reset()
        self.forward.reset()

    # -- context shift -------------------------------------------------------------
    def _turn(self, ids, params, cancel, *, started, ignore_eos, remember):
        """Chat turns (not raw-id benchmarks) whose prompt leaves too little room are shifted:
        the start of the conversation + its most recent tokens, half a window in all."""
        limit = self.context_length
        reserve = min(params.max_tokens, max(1, limit // 4))
        dropped = 0
        if self.context_shift and remember and limit and len(ids) + reserve > limit and len(ids) > 8:
            shifted = shifted_prompt(ids, limit, self.tokenizer.stop_ids)
            ids, dropped = shifted, len(ids) - len(shifted)
        return super()._turn(ids, params, cancel, started=started, ignore_eos=ignore_eos, remember=remember, dropped=dropped)


def shifted_prompt(ids: list[int], limit: int, boundary_ids) -> list[int]:
    """Keep the first part (up to the end of the system prompt, at most a quarter of the window)
    and the most recent tokens, so the prompt fills half the window."""
    head_max = max(1, limit // 4)
    head = 4
    for i, t in enumerate(ids[:head_max]):
        if t in boundary_ids:
            head = i + 1
            break
    head = min(head, head_max)
    tail = max(1, limit // 2 - head)
    return ids[:head] + ids[-tail:]


class CoreMLEngine(Engine):
    name = "coreml"
    label = "Core ML"

    def __init__(self, *, fp16_activations: bool = False) -> None:
        """``fp16_activations``: off macOS, have the MIL executor round every op's result to
        fp16 as the Neural Engine does (slower; what ``convert --check`` and the fidelity bench use)."""
        self._session: CoreMLSession | None = None
        self._runtime: CoreMLRuntime | None = None
        self._fp16 = fp16_activations

    @classmethod
    def available(cls) -> Availability:
        return choose_runtime()[1]

    def load(self, path: Path | str, *, context_length: int | None = None, progress: ProgressCallback | None = None) -> Session:
        folder = Path(path).expanduser()
        if not folder.exists():
            raise ModelNotFound(f"{folder} does not exist", hint="check the path, or list models with `anechat models`")
        if not folder.is_dir() or not (folder / "meta.yaml").is_file():
            raise ModelFormatError(f"{folder} is not a Core ML model folder (no meta.yaml)", hint="Core ML models use the ANEMLL layout: meta.yaml + .mlpackage/.mlmodelc parts")
        if context_length is not None and context_length < 2:
            raise InvalidParameter(f"context_length={context_length} is invalid: use an integer >= 2")
        runtime_cls, avail = choose_runtime()
        if runtime_cls is None:
            raise BackendUnavailable(avail.reason)
        layout = read_layout(folder)
        tokenizer = ChatTokenizer(folder)
        self.unload()
        from anechat.engines.coreml.runtime_mil import MILRuntime

        runtime = runtime_cls(layout, progress, fp16=True) if self._fp16 and issubclass(runtime_cls, MILRuntime) else runtime_cls(layout, progress)
        forward = ForwardPass(runtime)
        meta = layout.meta
        context = forward.context_length if not context_length else min(context_length, forward.context_length)
        info = ModelInfo(
            name=meta.name or folder.name,
            path=folder,
            architecture=meta.architecture,
            context_length=context,
            vocab_size=meta.vocab_size or tokenizer.vocab_size,
            quantization=_describe_luts(layout.luts),
            extra={
                "runtime": runtime.label,
                "batch_size": forward.batch_size,
                "chunks": len(layout.chunks),
                "monolithic": layout.monolithic,
                "state_length": forward.mask_length,
                "model_context_length": forward.context_length,
                "argmax_in_model": forward.argmax_in_model,
                "parts": [p.pick(runtime.prefer).name for p in layout.all_parts],
                "warnings": list(layout.warnings),
                "load_cache": runtime.load_report(),
            },
        )
        session = CoreMLSession(info, tokenizer, forward)
        session.forward.context_length = context
        self._runtime, self._session = runtime, session
        session.memory_probe = self.snapshot_memory
        self.snapshot_memory()
        return session

    def unload(self) -> None:
        if self._runtime is not None:
            self._runtime.close()
        self._runtime = None
        self._session = None
        self.snapshot_memory()

    def measure_memory(self) -> MemoryReport:
        if self._runtime is None:
            return MemoryReport()
        rss = _rss()
        return MemoryReport(
            model_bytes=self._runtime.weight_bytes(),
            active_bytes=rss or None,
            peak_bytes=(self._session._peak if self._session else None) or None,
            cache_bytes=self._runtime.state_bytes(self._session.forward.state) if self._session else None,
            details={"runtime": self._runtime.label, "process_rss_bytes": rss},
        )

    @property
    def session(self) -> Session | None:
        return self._session


def _describe_luts(luts: dict[str, int | None]) -> str:
    if not any(luts.values()):
        return "float16"
    return " ".join(f"{part} LUT{bits}" if bits else f"{part} fp16" for part, bits in luts.items())
