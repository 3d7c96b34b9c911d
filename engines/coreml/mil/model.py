"""An ``.mlpackage`` ready to run on the CPU: its functions compiled on first use.

With ``cache=True`` (the default) a package's lowered functions are written to its
:mod:`.plan_cache` entry after they are compiled, and served from it on the next load:
then neither coremltools nor the package's protobuf is touched.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from anechat.engines.coreml.mil import lite
from anechat.engines.coreml.mil.compiler import ConstCache, Plan, link, lower
from anechat.engines.coreml.mil.package_reader import FunctionInfo, MILPackage
from anechat.engines.coreml.mil.ops_state import StateSlot
from anechat.engines.coreml.mil.plan_cache import ArrayStore, PlanCache
from anechat.engines.coreml.mil.runner import run_plan


class MILModel:
    """Runs the functions of one saved package with numpy (fp32 on the CPU)."""

    def __init__(self, path: Path | str, cache: bool = True, fp16: bool = False):
        self.path = Path(path)
        #: round every op's float result to fp16, as the Neural Engine computes
        self.fp16 = fp16
        self._cache = ConstCache()
        self._plans: dict[str, Plan] = {}
        self._package: MILPackage | None = None
        self._plan_cache = PlanCache(self.path) if cache and self.path.suffix == ".mlpackage" and self.path.is_dir() else None
        #: "hit" (served from the cache), "written", "miss" (not written yet), or "off: <why>"
        self.cache_status = "off: disabled" if self._plan_cache is None else "miss"
        self._cached: dict[str, dict] = {}
        self._arrays: list[np.ndarray] = []
        self._infos: dict[str, FunctionInfo] = {}
        self._default = ""
        self._new_records: dict[str, dict] = {}
        self._store = ArrayStore()
        hit = self._plan_cache.load() if self._plan_cache is not None else None
        if hit is not None:
            plan, self._arrays = hit
            try:
                self._infos = {n: lite.info_from_record({"info": i}) for n, i in plan["infos"].items()}
                self._default, self._cached = str(plan["default"]), dict(plan["functions"])
                self.cache_status = "hit"
            except (KeyError, TypeError, ValueError):
                self._infos, self._cached = {}, {}
        if self.cache_status != "hit":
            self._open_package()

    def _open_package(self) -> MILPackage:
        if self._package is None:
            self._package = MILPackage(self.path)
            self._infos, self._default = self._package.functions, self._package.default_function
        return self._package

    @property
    def package(self) -> MILPackage:
        return self._open_package()

    @property
    def functions(self) -> dict[str, FunctionInfo]:
        return self._infos

    def function_info(self, name: str | None = None) -> FunctionInfo:
        if self._package is not None or name is not None and name not in self._infos:
            return self._open_package().function(name)
        return self._infos[name or self._default]

    def plan(self, name: str | None = None) -> Plan:
        info = self.function_info(name)
        if info.name in self._plans:
            return self._plans[info.name]
        record = self._cached.get(info.name)
        if record is not None:
            try:
                self._plans[info.name] = link(lite.from_record(record, self._arrays), self.fp16)
                return self._plans[info.name]
            except (KeyError, TypeError, ValueError, IndexError):
                self._cached.clear()  # a damaged entry: compile from the package instead
                self.cache_status = "miss"
        program = self._open_package().load_program(info.name)
        lowered = lower(program, self.path.name, self._cache, info.name)
        if self.cache_status == "miss":
            try:
                self._new_records[info.name] = lite.to_record(lowered, info, self._store)
            except lite.Uncacheable as exc:
                self.cache_status = f"off: {exc}"
        self._plans[info.name] = link(lowered, self.fp16)
        return self._plans[info.name]

    def save_cache(self) -> str:
        """Write the compiled functions to the load cache (when there is something new to
        write); returns :attr:`cache_status`."""
        if self.cache_status == "miss" and self._new_records and self._plan_cache is not None:
            package = self._open_package()
            plan = {
                "default": package.default_function,
                "infos": {n: _asdict(i) for n, i in package.functions.items()},
                "functions": self._new_records,
            }
            ok = self._plan_cache.save(plan, self._store.arrays)
            self.cache_status = "written" if ok else "off: the cache folder is not writable"
        self._new_records, self._store = {}, ArrayStore()
        return self.cache_status

    def compile_all(self) -> None:
        for name in self.functions:
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


def _asdict(info: FunctionInfo) -> dict:
    from dataclasses import asdict

    return asdict(info)
