"""Apple Silicon power from IOReport's "Energy Model" counters, readable without root.

Pure logic (any platform): which chip part a channel measures (names as macmon reads
them), units, joules over seconds -> watts. :class:`IOReportEnergy` reads the private
``libIOReport.dylib`` with ctypes; off Apple Silicon opening it raises
:class:`PowerUnavailable` with a one-line reason. ANE power is what the Neural Engine's
own energy counter says; no ANE utilisation figure is derived.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

ENERGY_GROUP = "Energy Model"
PARTS = ("CPU", "GPU", "ANE", "DRAM")  # display order
JOULES_PER_UNIT = {"mJ": 1e-3, "uJ": 1e-6, "\u00b5J": 1e-6, "\u03bcJ": 1e-6, "nJ": 1e-9, "J": 1.0}


class EnergyCounter(NamedTuple):
    """One IOReport channel: its group, name, unit label and an integer energy value."""

    group: str
    channel: str
    unit: str
    value: int


class PowerUnavailable(Exception):
    """Power cannot be read here; ``str()`` is the one-line reason ("power: ...")."""


def _strip_die(name: str) -> str:
    """Ultra chips (two dies) prefix channels with ``DIE_<n>_``; both dies sum into one part."""
    if name.startswith("DIE_"):
        head, sep, rest = name[4:].partition("_")
        if sep and head.isdigit() and rest:
            return rest
    return name


def part_of(channel: str) -> str | None:
    """The chip part an Energy Model channel measures, or None for the rest (ISP, display...).

    "CPU Energy" (all clusters together), "GPU Energy", "ANE"/"ANE0"/"ANE0_1", "DRAM...".
    A bare "GPU" channel is only a fallback (see :func:`watts_by_part`) and reports None here.
    """
    name = _strip_die(channel.strip())
    if name.endswith("CPU Energy"):
        return "CPU"
    if name == "GPU Energy":
        return "GPU"
    if name.startswith("ANE"):
        return "ANE"
    if name.startswith("DRAM"):
        return "DRAM"
    return None


def is_relevant(channel: str) -> bool:
    """Worth reading at all: a part's channel or the bare "GPU" fallback."""
    return part_of(channel) is not None or _strip_die(channel.strip()) == "GPU"


def watts_by_part(counters: Iterable[EnergyCounter], elapsed_s: float) -> dict[str, float]:
    """Energy spent over ``elapsed_s`` seconds -> ``{"CPU": W, "GPU": W, "ANE": W, "DRAM": W}``.

    Only Energy Model channels count; unknown units and negative energies are skipped;
    a part without any channel is left out (never shown as 0). ``elapsed_s <= 0`` -> {}.
    The GPU is "GPU Energy"; a bare "GPU" channel stands in only when that is absent,
    so the two are never added together.
    """
    if not elapsed_s > 0:  # also rejects NaN
        return {}
    spent: dict[str, float] = {}
    bare_gpu: float | None = None
    for c in counters:
        if c.group != ENERGY_GROUP:
            continue
        scale = JOULES_PER_UNIT.get(c.unit.strip())
        if scale is None or c.value < 0:
            continue
        j = c.value * scale
        part = part_of(c.channel)
        if part is not None:
            spent[part] = spent.get(part, 0.0) + j
        elif _strip_die(c.channel.strip()) == "GPU":
            bare_gpu = (bare_gpu or 0.0) + j
    if "GPU" not in spent and bare_gpu is not None:
        spent["GPU"] = bare_gpu
    return {p: spent[p] / elapsed_s for p in PARTS if p in spent}


def energy_deltas(before: Iterable[EnergyCounter], after: Iterable[EnergyCounter]) -> list[EnergyCounter]:
    """Per-channel growth of cumulative counters between two reads.

    Channels are matched by (group, name, unit) and their order of appearance; a channel
    missing from ``before`` or whose counter went backwards (reset) is left out.
    """

    def keyed(counters: Iterable[EnergyCounter]) -> dict[tuple[str, str, str, int], int]:
        seen: dict[tuple[str, str, str], int] = {}
        out: dict[tuple[str, str, str, int], int] = {}
        for c in counters:
            k = (c.group, c.channel, c.unit)
            seen[k] = seen.get(k, -1) + 1
            out[(*k, seen[k])] = c.value
        return out

    old = keyed(before)
    return [
        EnergyCounter(*key[:3], value - old[key])
        for key, value in keyed(after).items()
        if key in old and value >= old[key]
    ]


# -- the macOS reader (ctypes over private IOReport; loaded only when opened) -----------------

_COREFOUNDATION = "/System/Library/Frameworks/CoreFoundation.framework/CoreFoundation"
_IOREPORT = "/usr/lib/libIOReport.dylib"  # lives in the dyld shared cache, not on disk
_UTF8 = 0x08000100  # kCFStringEncodingUTF8


class IOReportEnergy:
    """A subscription to the Energy Model group. :meth:`read` returns each relevant channel's
    energy accumulated since the reader was opened. Not thread-safe: one caller at a time.
    """

    def __init__(self) -> None:
        import ctypes

        self._ct = ctypes
        self._buf = ctypes.create_string_buffer(256)
        self._key = self._channels = self._sub = self._base = None
        try:
            cf = ctypes.CDLL(_COREFOUNDATION)
            io = ctypes.CDLL(_IOREPORT)
        except OSError:
            raise PowerUnavailable("power: IOReport library not found") from None
        try:
            self._bind(cf, io)
        except AttributeError:
            raise PowerUnavailable("power: IOReport functions missing on this macOS") from None
        try:
            self._subscribe()
        except BaseException:
            self.close()
            raise

    def _bind(self, cf, io) -> None:
        ct = self._ct
        vp, idx = ct.c_void_p, ct.c_long

        def fn(lib, name, restype, *argtypes):
            f = getattr(lib, name)
            f.restype, f.argtypes = restype, list(argtypes)
            setattr(self, name, f)

        fn(cf, "CFRelease", None, vp)
        fn(cf, "CFStringCreateWithCString", vp, vp, ct.c_char_p, ct.c_uint32)
        fn(cf, "CFStringGetCString", ct.c_bool, vp, ct.c_char_p, idx, ct.c_uint32)
        fn(cf, "CFDictionaryGetValue", vp, vp, vp)
        fn(cf, "CFDictionaryCreateMutableCopy", vp, vp, idx, vp)
        fn(cf, "CFArrayGetCount", idx, vp)
        fn(cf, "CFArrayGetValueAtIndex", vp, vp, idx)
        fn(cf, "CFGetTypeID", ct.c_ulong, vp)
        fn(cf, "CFArrayGetTypeID", ct.c_ulong)
        fn(io, "IOReportCopyChannelsInGroup", vp, vp, vp, ct.c_uint64, ct.c_uint64, ct.c_uint64)
        fn(io, "IOReportCreateSubscription", vp, vp, vp, ct.POINTER(vp), ct.c_uint64, vp)
        fn(io, "IOReportCreateSamples", vp, vp, vp, vp)
        fn(io, "IOReportCreateSamplesDelta", vp, vp, vp, vp)
        fn(io, "IOReportChannelGetGroup", vp, vp)
        fn(io, "IOReportChannelGetChannelName", vp, vp)
        fn(io, "IOReportChannelGetUnitLabel", vp, vp)
        fn(io, "IOReportSimpleGetIntegerValue", ct.c_int64, vp, ct.c_int32)

    def _cfstr(self, text: str):
        ref = self.CFStringCreateWithCString(None, text.encode(), _UTF8)
        if not ref:
            raise PowerUnavailable("power: CoreFoundation refused a string")
        return ref

    def _pystr(self, ref) -> str:
        if not ref or not self.CFStringGetCString(ref, self._buf, len(self._buf), _UTF8):
            return ""
        return self._buf.value.decode("utf-8", "replace")

    def _channel_array(self, dictionary):
        arr = self.CFDictionaryGetValue(dictionary, self._key) if dictionary else None
        if not arr or self.CFGetTypeID(arr) != self.CFArrayGetTypeID():
            return None
        return arr

    def _subscribe(self) -> None:
        self._key = self._cfstr("IOReportChannels")
        group = self._cfstr(ENERGY_GROUP)
        try:
            found = self.IOReportCopyChannelsInGroup(group, None, 0, 0, 0)
        finally:
            self.CFRelease(group)
        if not found:
            raise PowerUnavailable("power: no IOReport energy counters (Apple Silicon only)")
        try:  # a subscription wants a mutable dictionary, as macmon and powermetrics pass
            self._channels = self.CFDictionaryCreateMutableCopy(None, 0, found)
        finally:
            self.CFRelease(found)
        arr = self._channel_array(self._channels)
        if arr is None or self.CFArrayGetCount(arr) <= 0:
            raise PowerUnavailable("power: no IOReport energy counters (Apple Silicon only)")
        # The out-dictionary of subscribed channels is not used; its ownership is undocumented,
        # so it is left alone (one small dictionary per reader, never released).
        subbed = self._ct.c_void_p()
        self._sub = self.IOReportCreateSubscription(None, self._channels, self._ct.byref(subbed), 0, None)
        if not self._sub:
            raise PowerUnavailable("power: IOReport subscription refused")
        self._base = self.IOReportCreateSamples(self._sub, self._channels, None)
        if not self._base:
            raise PowerUnavailable("power: IOReport gave no sample")

    def read(self) -> list[EnergyCounter]:
        if not self._base:
            raise PowerUnavailable("power: IOReport reader is closed")
        cur = self.IOReportCreateSamples(self._sub, self._channels, None)
        if not cur:
            raise PowerUnavailable("power: IOReport gave no sample")
        try:
            delta = self.IOReportCreateSamplesDelta(self._base, cur, None)
            if not delta:
                raise PowerUnavailable("power: IOReport gave no sample")
            try:
                return self._counters(delta)
            finally:
                self.CFRelease(delta)
        finally:
            self.CFRelease(cur)

    def _counters(self, sample) -> list[EnergyCounter]:
        arr = self._channel_array(sample)
        if arr is None:
            return []
        out = []
        for i in range(self.CFArrayGetCount(arr)):
            ch = self.CFArrayGetValueAtIndex(arr, i)
            if not ch:
                continue
            name = self._pystr(self.IOReportChannelGetChannelName(ch))
            if not is_relevant(name):  # skip the ~100 other SoC channels cheaply
                continue
            group = self._pystr(self.IOReportChannelGetGroup(ch))
            unit = self._pystr(self.IOReportChannelGetUnitLabel(ch)).strip()
            out.append(EnergyCounter(group, name, unit, int(self.IOReportSimpleGetIntegerValue(ch, 0))))
        return out

    def close(self) -> None:
        """Release the CoreFoundation objects this reader owns (safe to call twice)."""
        for attr in ("_base", "_sub", "_channels", "_key"):
            ref = getattr(self, attr, None)
            if ref:
                setattr(self, attr, None)
                self.CFRelease(ref)
