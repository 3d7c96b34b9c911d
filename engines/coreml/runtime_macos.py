"""The macOS runtime: Core ML itself runs the parts, on the Neural Engine.

``coremltools`` loads each part with ``compute_units=CPU_AND_NE`` and the function
asked for (``infer`` / ``prefill``); one ``make_state()`` serves every chunk. It
only runs on macOS (Core ML prediction does not exist elsewhere).
"""

from __future__ import annotations

import sys
from typing import Any, Mapping

import numpy as np

from anechat.engines.errors import BackendUnavailable, ModelFormatError
from anechat.engines.coreml.anemll import PartFiles
from anechat.engines.coreml.mil.package_reader import FunctionInfo, MILPackage
from anechat.engines.coreml.runtime_base import CoreMLRuntime, PartRunner

LABEL = "Neural Engine"
_NP = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32}


def coreml_prediction_available() -> tuple[bool, str]:
    """Whether Core ML prediction works here, and why not."""
    if sys.platform != "darwin":
        return False, "Core ML prediction runs only on macOS"
    try:
        from coremltools import libcoremlpython  # noqa: F401  (the native Core ML bridge)
    except ImportError as exc:
        return False, f"coremltools has no Core ML bridge here ({exc})"
    return True, "Core ML"


class MacPart(PartRunner):
    def __init__(self, files: PartFiles, functions: tuple[str | None, ...]):
        import coremltools as ct

        self.files = files
        self._models: dict[str | None, Any] = {}
        self._infos: dict[str | None, FunctionInfo] = {}
        package = MILPackage(files.mlpackage) if files.mlpackage else None  # IO description, when readable
        units = ct.ComputeUnit.CPU_AND_NE
        for fn in functions:
            path = files.pick(".mlmodelc")
            try:
                if path.suffix == ".mlmodelc":
                    kwargs = {"function_name": fn} if fn else {}
                    model = ct.models.CompiledMLModel(str(path), units, **kwargs)
                else:
                    model = ct.models.MLModel(str(path), compute_units=units, function_name=fn)
            except Exception as exc:
                if path.suffix == ".mlmodelc" and files.mlpackage is not None:
                    # some compiled multifunction models refuse function_name: the package works
                    model = ct.models.MLModel(str(files.mlpackage), compute_units=units, function_name=fn)
                else:
                    raise ModelFormatError(f"Core ML could not load {path.name} ({exc})") from exc
            self._models[fn] = model
            if package is not None:
                self._infos[fn] = package.function(fn if fn in package.functions else None)

    def info(self, function: str | None = None) -> FunctionInfo | None:
        return self._infos.get(function)

    def model(self, function: str | None = None) -> Any:
        return self._models[function] if function in self._models else next(iter(self._models.values()))

    def predict(self, inputs: Mapping[str, np.ndarray], state: Any = None, function: str | None = None) -> dict[str, np.ndarray]:
        info = self.info(function)
        feed = {}
        for name, value in inputs.items():
            dtype = _NP.get(info.inputs[name].dtype) if info and name in info.inputs else None
            feed[name] = np.ascontiguousarray(value, dtype=dtype or (np.int32 if np.asarray(value).dtype.kind in "iu" else np.float16))
        model = self.model(function)
        out = model.predict(feed, state) if state is not None else model.predict(feed)
        return {k: np.asarray(v) for k, v in out.items()}


class MacOSRuntime(CoreMLRuntime):
    name = "coreml-macos"
    label = LABEL
    prefer = ".mlmodelc"

    def __init__(self, layout, progress=None) -> None:
        ok, why = coreml_prediction_available()
        if not ok:
            raise BackendUnavailable(why)
        super().__init__(layout, progress)

    def load_part(self, files: PartFiles, functions: tuple[str | None, ...]) -> PartRunner:
        return MacPart(files, functions)

    def make_state(self) -> Any:
        first = self.chunks[0]
        part, fn = (first.prefill, first.prefill_function) if first.prefill else (first.infer, first.infer_function)
        return part.model(fn).make_state()  # type: ignore[attr-defined]
