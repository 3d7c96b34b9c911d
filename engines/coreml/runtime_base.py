"""What a Core ML runtime offers the forward pass (:mod:`.forward`), whichever runs the parts.

Two runtimes implement it: :mod:`.runtime_macos` (Core ML itself, on the Neural
Engine) and :mod:`.runtime_mil` (the MIL executor, numpy on the CPU, anywhere).
A runtime loads the parts of a :class:`~.anemll.CoreMLLayout`, makes ONE
state shared by every FFN chunk, and runs a part's function on a dict of inputs.
A monolithic layout has no embeddings or LM head part: ``embeddings`` and ``lm_head`` are
None and the one chunk's package holds the whole model.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from anechat.engines.coreml.anemll import CoreMLLayout, PartFiles
from anechat.engines.coreml.mil.package_reader import FunctionInfo

ProgressCallback = Callable[[str, "float | None"], None]


class PartRunner(ABC):
    """One loaded part (package). ``function`` None means its default function."""

    files: PartFiles

    @abstractmethod
    def info(self, function: str | None = None) -> FunctionInfo | None:
        """Inputs / outputs / states of a function, when the runtime can tell."""

    @abstractmethod
    def predict(self, inputs: Mapping[str, np.ndarray], state: Any = None, function: str | None = None) -> dict[str, np.ndarray]:
        ...


@dataclass
class ChunkRunners:
    index: int
    infer: PartRunner
    infer_function: str | None
    prefill: PartRunner | None
    prefill_function: str | None


class CoreMLRuntime(ABC):
    """Loads every part of a layout and makes the shared KV state."""

    #: short id ("coreml-macos" / "mil") and the label the UI shows
    name: str = ""
    label: str = ""
    #: the part file kind this runtime prefers (".mlmodelc" / ".mlpackage")
    prefer: str = ".mlpackage"

    def __init__(self, layout: CoreMLLayout, progress: ProgressCallback | None = None) -> None:
        self.layout = layout
        self._progress = progress
        parts: dict[str, PartRunner] = {}
        steps = len(layout.all_parts)
        done = 0

        def load(files: PartFiles, functions: tuple[str | None, ...]) -> PartRunner:
            nonlocal done
            if files.stem not in parts:
                self._report(f"loading {files.label} ({files.pick(self.prefer).name})", done / steps)
                parts[files.stem] = self.load_part(files, functions)
                done += 1
            return parts[files.stem]

        self.embeddings = load(layout.embeddings, (None,)) if layout.embeddings is not None else None
        self.chunks: list[ChunkRunners] = []
        for c in layout.chunks:
            same = c.prefill is not None and c.prefill.stem == c.infer.stem
            fns = (c.infer_function, c.prefill_function) if same else (c.infer_function,)
            infer = load(c.infer, fns)
            prefill = None if c.prefill is None else load(c.prefill, fns if same else (c.prefill_function,))
            self.chunks.append(ChunkRunners(c.index, infer, c.infer_function, prefill, c.prefill_function))
        self.lm_head = load(layout.lm_head, (None,)) if layout.lm_head is not None else None
        self._report("model loaded", 1.0)

    def parts(self) -> list[PartRunner]:
        """Every loaded part once (a package serving infer and prefill is one part)."""
        found = [self.embeddings, *[c.infer for c in self.chunks], *[c.prefill for c in self.chunks], self.lm_head]
        return list({id(p): p for p in found if p is not None}.values())

    def _report(self, message: str, fraction: float | None) -> None:
        if self._progress is not None:
            self._progress(message, fraction)

    @abstractmethod
    def load_part(self, files: PartFiles, functions: tuple[str | None, ...]) -> PartRunner:
        ...

    @abstractmethod
    def make_state(self) -> Any:
        """A fresh KV state, shared by every chunk's infer and prefill."""

    def weight_bytes(self) -> int | None:
        return None

    def load_report(self) -> dict[str, str]:
        """Per part, how it was loaded (the MIL runtime says whether its load cache served it)."""
        return {}

    def state_bytes(self, state: Any) -> int | None:
        """Memory the KV state takes, when the runtime can tell."""
        return None

    def close(self) -> None:
        pass
