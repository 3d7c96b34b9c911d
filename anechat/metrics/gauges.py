"""Gauges for the app's memory panel, sampled without any UI: process and system
memory (psutil), the engine's own :class:`MemoryReport` (the snapshot the engine
keeps, see :meth:`Engine.memory`), the model's size on disk, and power where it
can be read.

Power: Apple exposes CPU/GPU/ANE energy counters through IOReport, readable without
root only on macOS (Apple Silicon). :class:`PowerMeter` turns two reads of those
counters into watts per part (anechat.metrics.power_macos does the reading); anywhere else it
says why not. There is no public ANE utilisation figure and none is made up here.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from anechat.engines.base import Engine, MemoryReport
from anechat.metrics.power_macos import EnergyCounter, IOReportEnergy, PowerUnavailable, energy_deltas, watts_by_part


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
    engine: MemoryReport | None = None  # the engine's latest snapshot
    model_disk_bytes: int | None = None
    power: PowerReading = field(default_factory=lambda: read_power())

    @property
    def system_fraction(self) -> float | None:
        if not self.system_used or not self.system_total:
            return None
        return min(1.0, self.system_used / self.system_total)


MACOS_ONLY = "power: macOS only (IOReport)"
MEASURING = "power: measuring\u2026"


def read_power() -> PowerReading:
    """The power line before anything was measured; touches no counters (cheap, any thread)."""
    if sys.platform != "darwin":
        return PowerReading(False, MACOS_ONLY)
    return PowerReading(False, MEASURING)


def _reason(exc: BaseException) -> str:
    """One short line: the reader's own reason, else the kind of failure."""
    if isinstance(exc, PowerUnavailable) and str(exc).startswith("power:"):
        return str(exc).splitlines()[0]
    return f"power: counters unreadable ({type(exc).__name__})"


class PowerMeter:
    """Watts per part over the interval since the previous read.

    ``sample`` returns cumulative energy counters (default: IOReport, opened on the first
    read and only on macOS). The first read primes and says "measuring…"; reads closer
    together than ``min_interval_s`` return the last reading without sampling. Any failure
    becomes an unavailable reading with a one-line reason, never an exception.
    Thread-safe; meant for one gauge worker at ~1–2 Hz.
    """

    def __init__(
        self,
        sample: Callable[[], Iterable[EnergyCounter]] | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        min_interval_s: float = 0.25,
        platform: str = sys.platform,
    ) -> None:
        self._sample = sample
        self._clock = clock
        self._min_interval = min_interval_s
        self._lock = threading.Lock()
        self._prev: tuple[list[EnergyCounter], float] | None = None
        self._last = PowerReading(False, MEASURING)
        self._failed: PowerReading | None = None
        if sample is None and platform != "darwin":
            self._failed = PowerReading(False, MACOS_ONLY)

    def read(self) -> PowerReading:
        with self._lock:
            if self._failed is not None:
                return self._failed
            now = self._clock()
            if self._prev is not None and not now - self._prev[1] >= max(self._min_interval, 1e-6):
                return self._last  # too soon (or a clock that went back): nothing new to say
            if self._sample is None:
                try:
                    self._sample = IOReportEnergy().read
                except Exception as exc:  # no library, Intel Mac, refused: say so for good
                    self._failed = PowerReading(False, _reason(exc))
                    return self._failed
            try:
                counters = list(self._sample())
            except Exception as exc:  # a failed read: report it, start measuring afresh
                self._prev = None
                self._last = PowerReading(False, _reason(exc))
                return self._last
            prev, self._prev = self._prev, (counters, now)
            if prev is None:
                self._last = PowerReading(False, MEASURING)
            else:
                watts = watts_by_part(energy_deltas(prev[0], counters), now - prev[1])
                self._last = (
                    PowerReading(True, "IOReport energy counters", watts)
                    if watts
                    else PowerReading(False, "power: no CPU/GPU/ANE energy counters")
                )
            return self._last


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

    def __init__(self, power: PowerMeter | None = None) -> None:
        self._disk_cache: dict[str, int | None] = {}
        self._lock = threading.Lock()
        self.power = power if power is not None else PowerMeter()

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
        """Read everything now. The engine's part is its memory snapshot (``engine.memory()``),
        which the engine refreshes on its own thread; this never calls into the backend,
        so it is safe from any thread while the engine thread generates."""
        used, total = system_memory()
        return Gauges(
            process_rss=process_rss(),
            system_used=used,
            system_total=total,
            engine_name=getattr(engine, "name", "") if engine is not None else "",
            engine=engine.memory() if engine is not None else None,
            model_disk_bytes=self.model_disk_bytes(model_path),
            power=self.power.read(),
        )
