"""Power in the memory panel: IOReport energy counters -> watts per chip part.

The IOReport reader itself only runs on an Apple Silicon Mac; here the counters are fed as
the (group, channel, unit, value) tuples it returns, and everything after that is real.
"""

from __future__ import annotations

import sys

import pytest

from anechat.metrics.gauges import GaugeSampler, PowerMeter, PowerReading
from anechat.metrics.power_macos import (
    EnergyCounter,
    IOReportEnergy,
    PowerUnavailable,
    energy_deltas,
    part_of,
    watts_by_part,
)

off_macos = pytest.mark.skipif(sys.platform == "darwin", reason="checks the answer where IOReport is absent")


def energy(channel: str, value: int, unit: str = "mJ", group: str = "Energy Model") -> EnergyCounter:
    return EnergyCounter(group, channel, unit, value)


# -- which channel is which part ------------------------------------------------------------


def test_channels_are_classified_as_macmon_names_them():
    assert part_of("CPU Energy") == "CPU"
    assert part_of("DIE_1_CPU Energy") == "CPU"  # Ultra: one per die
    assert part_of("GPU Energy") == "GPU"
    assert [part_of(n) for n in ("ANE", "ANE0", "ANE0_1", "DIE_0_ANE0")] == ["ANE"] * 4
    assert part_of("DRAM") == "DRAM" and part_of("DRAM0") == "DRAM"


def test_per_core_and_other_soc_channels_belong_to_no_part():
    for name in ("PCPU0", "EACC_CPU", "PACC0_CPU1", "GPU SRAM", "ISP", "AVE", "DISP", "GPU"):
        assert part_of(name) is None, name


# -- joules over seconds ----------------------------------------------------------------------


def test_energy_over_two_seconds_becomes_watts_per_part():
    counters = [
        energy("CPU Energy", 3000),  # 3 J
        energy("PCPU0", 2000),  # a core, already inside "CPU Energy": not added again
        energy("GPU Energy", 400_000_000, "nJ"),  # 0.4 J
        energy("ANE", 1_600_000, "uJ"),  # 1.6 J
        energy("DRAM", 600),  # 0.6 J
        energy("ISP", 9999),
    ]
    watts = watts_by_part(counters, 2.0)
    assert watts == pytest.approx({"CPU": 1.5, "GPU": 0.2, "ANE": 0.8, "DRAM": 0.3})
    assert list(watts) == ["CPU", "GPU", "ANE", "DRAM"]  # the order the panel shows


def test_both_dies_of_an_ultra_add_up():
    counters = [energy("DIE_0_CPU Energy", 1000), energy("DIE_1_CPU Energy", 1000), energy("ANE0_0", 250)]
    assert watts_by_part(counters, 1.0) == pytest.approx({"CPU": 2.0, "ANE": 0.25})


def test_the_same_energy_in_any_unit_is_the_same_power():
    one_joule = [("mJ", 1000), ("uJ", 1_000_000), ("\u00b5J", 1_000_000), ("nJ", 1_000_000_000)]
    for unit, value in one_joule:
        assert watts_by_part([energy("ANE", value, unit)], 1.0) == pytest.approx({"ANE": 1.0}), unit


def test_unknown_units_and_other_groups_are_skipped_not_guessed():
    counters = [
        energy("CPU Energy", 500, "ticks"),
        energy("GPU Energy", 500, ""),
        energy("ANE", 500, "mJ", group="CPU Stats"),
        energy("DRAM", 500),
    ]
    assert watts_by_part(counters, 1.0) == pytest.approx({"DRAM": 0.5})


def test_a_part_without_a_counter_is_absent_not_zero():
    assert "ANE" not in watts_by_part([energy("CPU Energy", 100)], 1.0)
    assert watts_by_part([energy("ANE", 0)], 1.0) == {"ANE": 0.0}  # an idle ANE is a real 0 W


def test_no_elapsed_time_gives_no_figures():
    counters = [energy("CPU Energy", 1000)]
    assert watts_by_part(counters, 0.0) == {}
    assert watts_by_part(counters, -1.0) == {}
    assert watts_by_part(counters, float("nan")) == {}


def test_a_bare_gpu_channel_is_only_a_fallback_never_added_twice():
    assert watts_by_part([energy("GPU", 700)], 1.0) == pytest.approx({"GPU": 0.7})
    both = [energy("GPU", 700), energy("GPU Energy", 200_000_000, "nJ")]
    assert watts_by_part(both, 1.0) == pytest.approx({"GPU": 0.2})


def test_deltas_skip_new_channels_and_counters_that_went_back():
    before = [energy("CPU Energy", 1000), energy("ANE", 500)]
    after = [energy("CPU Energy", 1600), energy("ANE", 100), energy("DRAM", 50)]
    assert energy_deltas(before, after) == [energy("CPU Energy", 600)]


# -- the meter: two reads, the interval between them ------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counters:
    """Cumulative counters that grow by fixed joules each time the clock has moved."""

    def __init__(self, *samples: list[EnergyCounter]) -> None:
        self.samples = list(samples)
        self.calls = 0

    def __call__(self) -> list[EnergyCounter]:
        self.calls += 1
        return self.samples.pop(0)


def test_the_first_read_only_primes_then_watts_come_from_the_interval():
    clock = Clock()
    counters = Counters(
        [energy("CPU Energy", 10_000), energy("GPU Energy", 0, "nJ"), energy("ANE", 5_000)],
        [energy("CPU Energy", 12_400), energy("GPU Energy", 100_000_000, "nJ"), energy("ANE", 6_600)],
    )
    meter = PowerMeter(counters, clock=clock)

    first = meter.read()
    assert not first.available and first.watts == {} and "measuring" in first.reason

    clock.now += 2.0
    second = meter.read()
    assert second.available
    assert second.watts == pytest.approx({"CPU": 1.2, "GPU": 0.05, "ANE": 0.8})


def test_reads_closer_than_the_minimum_interval_reuse_the_last_reading():
    clock = Clock()
    counters = Counters([energy("ANE", 0)], [energy("ANE", 1000)])
    meter = PowerMeter(counters, clock=clock, min_interval_s=0.5)
    meter.read()
    clock.now += 1.0
    reading = meter.read()
    clock.now += 0.1
    assert meter.read() is reading and counters.calls == 2


def test_a_failed_read_says_why_and_measuring_starts_again():
    clock = Clock()
    refused = PowerUnavailable("power: IOReport gave no sample")
    samples = iter([[energy("ANE", 0)], refused, [energy("ANE", 100)], [energy("ANE", 600)]])

    def sample():
        item = next(samples)
        if isinstance(item, Exception):
            raise item
        return item

    meter = PowerMeter(sample, clock=clock)
    readings = []
    for _ in range(4):
        readings.append(meter.read())
        clock.now += 1.0
    measuring = "power: measuring\u2026"
    assert [r.reason for r in readings[:3]] == [measuring, "power: IOReport gave no sample", measuring]
    assert readings[3].available and readings[3].watts == pytest.approx({"ANE": 0.5})


def test_any_other_failure_is_one_short_line_never_an_exception():
    def broken():
        raise RuntimeError("segment 7 of the dictionary was not a number\nand more")

    reading = PowerMeter(broken, clock=Clock()).read()
    assert reading == PowerReading(False, "power: counters unreadable (RuntimeError)")


def test_counters_without_any_chip_part_are_not_shown_as_watts():
    clock = Clock()
    meter = PowerMeter(Counters([energy("ISP", 0)], [energy("ISP", 900)]), clock=clock)
    meter.read()
    clock.now += 1.0
    reading = meter.read()
    assert not reading.available and reading.watts == {} and reading.reason.startswith("power: ")


def test_the_sampler_carries_its_meters_watts_into_each_sample():
    clock = Clock()
    counters = Counters(
        [energy("CPU Energy", 0), energy("ANE", 0)],
        [energy("CPU Energy", 1500), energy("ANE", 400)],
    )
    sampler = GaugeSampler(power=PowerMeter(counters, clock=clock))
    assert not sampler.sample().power.available
    clock.now += 1.0
    assert sampler.sample().power.watts == pytest.approx({"CPU": 1.5, "ANE": 0.4})


# -- where IOReport does not exist -------------------------------------------------------------


@off_macos
def test_off_macos_the_meter_and_the_sampler_say_macos_only():
    for power in (PowerMeter().read(), GaugeSampler().sample().power):
        assert power == PowerReading(False, "power: macOS only (IOReport)")


@off_macos
def test_the_ioreport_reader_without_the_library_gives_a_reason_not_a_crash():
    with pytest.raises(PowerUnavailable, match=r"^power: "):
        IOReportEnergy()
    reading = PowerMeter(platform="darwin").read()  # as on a Mac whose IOReport cannot be opened
    assert not reading.available and reading.watts == {} and reading.reason.startswith("power: ")
