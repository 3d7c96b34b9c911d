"""An ``.mlpackage`` ready to run on the CPU: its functions compiled on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from anechat.engines.coreml.mil.compiler import ConstCache, Plan, compile_function
from anechat.engines.coreml.mil.package_reader import FunctionInfo, MILPackage
from anechat.engines.coreml.mil.ops_state import StateSlot
from anechat.engines.coreml.mil.runner import run_plan


class MILModel:
    """Runs the functions of one saved package with numpy (fp32 on the CPU)."""

    def __init__(self, path: Path | str):
        self.package = MILPackage(path)
        self.path = self.package.path
        self._cache = ConstCache()
        self._plans: dict[str, Plan] = {}

    @property
    def functions(self) -> dict[str, FunctionInfo]:
        return self.package.functions

    def function_info(self, name: str | None = None) -> FunctionInfo:
        return self.package.function(name)

    def plan(self, name: str | None = None) -> Plan:
        info = self.package.function(name)
        if info.name not in self._plans:
            program = self.package.load_program(info.name)
            self._plans[info.name] = compile_function(program, self.path.name, self._cache, info.name)
        return self._plans[info.name]

    def compile_all(self) -> None:
        for name in self.package.functions:
            self.plan(name)

    def make_states(self, name: str | None = None) -> dict[str, StateSlot]:
        """Zero-filled states for the function's declared states (fp32)."""
        return {n: StateSlot(n, np.zeros(t.shape, np.float32)) for n, t in self.function_info(name).states.items()}

    def predict(self, inputs: Mapping[str, np.ndarray], states: Mapping[str, StateSlot] | None = None, function: str | None = None) -> dict[str, np.ndarray]:
        return run_plan(self.plan(function), inputs, states)

    def constant_arrays(self):
        """The arrays the compiled functions hold (weights and other constants), each once."""
        seen: set[int] = set()
        for plan in self._plans.values():
            for v in plan.arrays:
                if id(v) not in seen:
                    seen.add(id(v))
                    yield v

    def weight_bytes(self) -> int:
        return sum(v.nbytes for v in self.constant_arrays())
