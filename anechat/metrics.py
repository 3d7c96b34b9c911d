"""Gauges for the app's memory panel, sampled without any UI: process and system
memory (psutil), the engine's own :class:`MemoryReport`, the model's size on disk,
and power where it can be read.

Power: Apple exposes CPU/GPU/ANE energy counters through IOReport, readable without
root only on macOS. anechat does not read them yet, so :func:`read_power` says so
honestly; there is no public ANE utilisation figure and none is made up here.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from .engines.base import Engine, MemoryReport


@dataclass(frozen=True)
class PowerReading:
    available: bool
    reason: str  # why not, or where the figures come from
    watts: dict[str, float] = field(default_factory=dict)  # e.g. {"CPU": 1.2, "GPU": 0.1, "ANE": 0.8}


@dataclass(frozen=True)
class Gauges:
    """One sample of everything the memory panel shows. Unknown figures are None."""

    process_rss: int | None = None
    system_used: int | None = None
    system_total: int | None = None
    engine_name: str = ""
    engine: MemoryReport | None = None
    model_disk_bytes: int | None = None
    power: PowerReading = field(default_factory=lambda: read_power())

    @property
    def system_fraction(self) -> float | None:
        if not self.system_used or not self.system_total:
            return None
        return min(1.0, self.system_used / self.system_total)


def read_power() -> PowerReading:
    if sys.platform != "darwin":
        return PowerReading(False, "power: macOS only (IOReport)")
    return PowerReading(False, "power: IOReport reading not built into this version")


def process_rss() -> int | None:
    try:
        import psutil

        return int(psutil.Process(os.getpid()).memory_info().rss)
    except Exception:  # psutil missing or the platform refuses: show "—"
        return None


def system_memory() -> tuple[int | None, int | None]:
    """(used, total) bytes; used = total - available, as activity monitors show it."""
    try:
        import psutil

        vm = psutil.virtual_memory()
        return int(vm.total - vm.available), int(vm.total)
    except Exception:
        return None, None


def folder_size(path: Path | str) -> int | None:
    """Bytes of the files under ``path`` (a file counts itself); symlinks are followed once."""
    p = Path(path)
    try:
        if p.is_file():
            return p.stat().st_size
        if not p.is_dir():
            return None
        total = 0
        seen: set[tuple[int, int]] = set()
        for root, _dirs, files in os.walk(p, followlinks=False):
            for name in files:
                try:
                    st = (Path(root) / name).stat()
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key not in seen:
                    seen.add(key)
                    total += st.st_size
        return total
    except OSError:
        return None


class GaugeSampler:
    """Samples :class:`Gauges`; safe to call from a worker thread while a model generates.

    The size on disk is computed once per model path (walking a folder is not free).
    """

    def __init__(self) -> None:
        self._disk_cache: dict[str, int | None] = {}
        self._lock = threading.Lock()

    def model_disk_bytes(self, path: Path | str | None) -> int | None:
        if path is None:
            return None
        key = str(path)
        with self._lock:
            if key in self._disk_cache:
                return self._disk_cache[key]
        size = folder_size(key)
        with self._lock:
            self._disk_cache[key] = size
        return size

    def sample(self, engine: Engine | None = None, model_path: Path | str | None = None) -> Gauges:
        used, total = system_memory()
        report = None
        if engine is not None:
            try:
                report = engine.memory()
            except Exception:  # an engine mid-unload may refuse: show "—" this once
                report = None
        return Gauges(
            process_rss=process_rss(),
            system_used=used,
            system_total=total,
            engine_name=getattr(engine, "name", "") if engine is not None else "",
            engine=report,
            model_disk_bytes=self.model_disk_bytes(model_path),
            power=read_power(),
        )
