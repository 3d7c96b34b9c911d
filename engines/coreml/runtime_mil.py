"""The portable runtime: every part runs in the MIL executor (numpy, fp32, CPU)."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from anechat.engines.errors import ModelFormatError
from anechat.engines.coreml.anemll import PartFiles
from anechat.engines.coreml.mil import MILModel, StateSlot
from anechat.engines.coreml.mil.package_reader import FunctionInfo
from anechat.engines.coreml.mil.threads import blas_threads
from anechat.engines.coreml.runtime_base import CoreMLRuntime, PartRunner

LABEL = "MIL on CPU — no Neural Engine here"
LABEL_FP16 = "MIL on CPU, fp16 activations — no Neural Engine here"


class MILPart(PartRunner):
    def __init__(self, files: PartFiles, functions: tuple[str | None, ...], fp16: bool = False):
        self.files = files
        path = files.mlpackage
        if path is None:
            raise ModelFormatError(
                f"{files.label}: only {files.mlmodelc.name if files.mlmodelc else files.stem} (compiled) is here, "
                "and the MIL executor needs the .mlpackage",
                hint="only Core ML on macOS runs .mlmodelc parts; download the .mlpackage release or re-convert with anechat",
            )
        self.model = MILModel(path, fp16=fp16)
        for fn in functions:  # compile at load, so the first token is not slow
            self.model.plan(self._name(fn))
        self.model.save_cache()

    def _name(self, function: str | None) -> str | None:
        if function is None or function in self.model.functions:
            return function
        if len(self.model.functions) == 1:
            return None  # a single-function package serves whatever was asked
        raise ModelFormatError(f"{self.files.any_path.name} has no function {function!r} (it has {', '.join(self.model.functions)})")

    def info(self, function: str | None = None) -> FunctionInfo:
        return self.model.function_info(self._name(function))

    def predict(self, inputs: Mapping[str, np.ndarray], state: Any = None, function: str | None = None) -> dict[str, np.ndarray]:
        with blas_threads():
            return self.model.predict(inputs, state, self._name(function))


class MILRuntime(CoreMLRuntime):
    name = "mil"
    label = LABEL
    prefer = ".mlpackage"

    def __init__(self, layout, progress=None, fp16: bool = False) -> None:
        #: activations rounded to fp16 after every op (what the Neural Engine keeps)
        self.fp16 = fp16
        if fp16:
            self.label = LABEL_FP16
        super().__init__(layout, progress)

    def load_part(self, files: PartFiles, functions: tuple[str | None, ...]) -> PartRunner:
        return MILPart(files, functions, self.fp16)

    def load_report(self) -> dict[str, str]:
        """How each part was loaded: "hit" (from its load cache), "written", or "off: <why>"."""
        return {p.files.any_path.name: p.model.cache_status for p in self.parts()}  # type: ignore[attr-defined]

    def make_state(self) -> dict[str, StateSlot]:
        shapes: dict[str, tuple[int, ...]] = {}
        for chunk in self.chunks:
            for part, fn in ((chunk.infer, chunk.infer_function), (chunk.prefill, chunk.prefill_function)):
                if part is None:
                    continue
                for name, t in part.info(fn).states.items():
                    if shapes.setdefault(name, t.shape) != t.shape:
                        raise ModelFormatError(
                            f"{part.files.any_path.name}: state {name!r} is {t.shape} here but {shapes[name]} in another chunk",
                            hint="the chunks come from different conversions; re-convert the model",
                        )
        return {n: StateSlot(n, np.zeros(s, np.float32)) for n, s in shapes.items()}

    def state_bytes(self, state: Any) -> int:
        return sum(slot.value.nbytes for slot in state.values())

    def weight_bytes(self) -> int:
        seen: set[int] = set()
        total = 0
        for part in self.parts():
            for v in part.model.constant_arrays():  # type: ignore[attr-defined]
                if id(v) not in seen:
                    seen.add(id(v))
                    total += v.nbytes
        return total
