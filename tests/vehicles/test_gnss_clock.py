"""GNSS time as a clock source: a vehicle gateway without NTP trusts the receiver's RMC time while it has a fix."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from drivers.base import BusContext
from drivers.gnss.bus import GnssBus
from drivers.gnss.clock import GnssClock, active
from drivers.model import Event
from drivers.registry import make_bus
from edge_agent.lighting.clocktrust import ClockMode, ClockTrust
from edge_agent.timesync import GnssTimeSync, KernelTimeSync, clock_quality, kernel_clock_quality
from simulators.gps import DIJON_ROUND, GpsReceiver
from tests.meters.meters_testkit import running, until

CTX = BusContext(key="bus[0]", config_dir=Path("."))
T0 = dt.datetime(2026, 12, 3, 17, 0, tzinfo=dt.UTC)


def test_the_clock_takes_only_plausible_times_and_holds_over_for_a_while() -> None:
    clock = GnssClock(holdover_s=60)
    assert clock.now_ms() is None and not clock.synchronised()
    assert not clock.update(int(dt.datetime(1980, 1, 6, tzinfo=dt.UTC).timestamp() * 1000), at=100.0)  # cold start
    assert clock.now_ms(at=100.0) is None
    t = int(T0.timestamp() * 1000)
    assert clock.update(t, at=100.0)
    assert clock.now_ms(at=130.5) == t + 30_500  # carried on the monotonic clock
    assert clock.now_ms(at=161.0) is None  # past the holdover: no longer a time source


def test_clock_trust_follows_the_gnss_fix_and_falls_back_when_it_is_lost_too_long() -> None:
    clock = GnssClock(holdover_s=600)
    sync = GnssTimeSync(lambda: [clock])
    trust = ClockTrust(sync, lost_after_s=3600, safe_program="all-night")
    now = time.monotonic()
    clock.update(time.time_ns() // 1_000_000, at=now)  # a fix now, agreeing with the system clock
    assert sync.is_synchronized() and trust.check(T0) is None and trust.last_sync == T0
    clock.update(time.time_ns() // 1_000_000, at=now - 700)  # that fix was 700 s ago: past the holdover
    assert not sync.is_synchronized()
    assert trust.check(T0 + dt.timedelta(minutes=30)) is None  # within clock_lost_after_s
    lost = trust.check(T0 + dt.timedelta(minutes=61))
    assert isinstance(lost, Event) and lost.code == "clock_unsynchronised" and trust.mode is ClockMode.UNSYNCHRONISED
    clock.update(time.time_ns() // 1_000_000)  # the receiver has a fix again
    back = trust.check(T0 + dt.timedelta(minutes=62))
    assert isinstance(back, Event) and back.code == "clock_restored"


def test_a_system_clock_far_from_gnss_time_is_not_synchronised_by_it() -> None:
    clock = GnssClock()
    clock.update(time.time_ns() // 1_000_000 - 45_000)  # the RTC is 45 s ahead
    sync = GnssTimeSync(lambda: [clock])
    assert not sync.is_synchronized()
    if not kernel_clock_quality().synchronised:
        q = clock_quality(sync)
        assert q.synchronised is False and q.reason is not None and "+45" in q.reason


async def test_a_running_gnss_bus_is_the_agents_time_source() -> None:
    """Real receiver rhythm (1 Hz, its time now): the kernel's check and `status` count the bus's clock."""
    async with GpsReceiver(DIJON_ROUND, period_s=1.0) as gps:
        bus = make_bus({"name": "gps", "type": "gnss", "port": gps.port, "clock_offset_alarm_s": 2}, CTX)
        assert isinstance(bus, GnssBus)
        assert not GnssTimeSync().is_synchronized()
        async with running(bus) as records:
            await until(lambda: bus.clock.synchronised(), timeout=10)
            assert bus.clock in active()
            assert GnssTimeSync().is_synchronized() and KernelTimeSync().is_synchronized()
            q = clock_quality()
            assert q.synchronised and q.source in ("kernel", "gnss")
            if not kernel_clock_quality().synchronised:
                assert q.source == "gnss" and q.max_error_ms is not None and q.max_error_ms < 2000
        assert bus.clock not in active()  # a stopped bus is no time source
    assert not [r for r in records if isinstance(r, Event) and r.code == "system_clock_offset"]


async def test_a_system_clock_off_gnss_time_is_an_event() -> None:
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30)  # the receiver is right, the RTC 30 s late
    async with GpsReceiver(DIJON_ROUND, period_s=0.05, start=ahead) as gps:
        bus = make_bus({"name": "gps", "type": "gnss", "port": gps.port, "clock_offset_alarm_s": 5}, CTX)
        async with running(bus) as records:
            await until(lambda: any(isinstance(r, Event) and r.code == "system_clock_offset" for r in records))
    offset = next(r for r in records if isinstance(r, Event) and r.code == "system_clock_offset")
    assert offset.detail["offset_ms"] < -25_000
