"""The demo's simulated clock: its variable's form, and what a process given it reads (the wall clock, the
agent's clock, its time source) against one without it, whose real check is untouched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime

import pytest

from citygate_wire.simclock import ENV, SimulatedClock, parse
from simulators.demo import LEAD, PARIS, demo_clock, lamp_on

PROBE = """
import asyncio, json, time
from datetime import timedelta
from citygate_wire.common import now_ms
from edge_agent.clock import SystemClock
from edge_agent.timesync import clock_quality

clock = SystemClock()
start = time.monotonic()
asyncio.run(clock.sleep_until(clock.now() + timedelta(minutes=10)))
print(json.dumps({"now_ms": now_ms(), "clock_ms": int(clock.now().timestamp() * 1000),
                  "slept_s": time.monotonic() - start, "quality": clock_quality().to_doc()}))
"""


def probe(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, **env}, capture_output=True, text=True,
                         timeout=120, check=True)
    return dict(json.loads(out.stdout))


def test_the_variable_round_trips_and_a_bad_one_says_what_it_expects() -> None:
    clock = SimulatedClock(1_796_400_000_000, 1_796_300_000_000, 120.0)
    assert parse(clock.to_env()) == clock
    assert clock.at(clock.real_ms + 1000) == clock.start_ms + 120_000
    assert clock.real_at(clock.start_ms + 120_000) == clock.real_ms + 1000
    for bad in ("", "12", "12@34", "12@34x0", "12@34x-1", "a@bxc", "12@34x99999"):
        with pytest.raises(ValueError, match=ENV):
            parse(bad)


def test_the_demo_clock_starts_before_tonights_lamp_on() -> None:
    clock = demo_clock(120.0, real_now=time.time())
    start = clock.start_ms / 1000
    on = lamp_on(datetime.fromtimestamp(clock.real_ms / 1000, PARIS).date()).timestamp()
    assert abs(on - start - LEAD.total_seconds()) < 0.001  # the clock counts whole milliseconds


def test_a_process_on_the_simulated_clock_reads_it_and_counts_it_synchronised() -> None:
    hour_ahead = int(time.time() * 1000) + 3_600_000
    sim = SimulatedClock(hour_ahead, int(time.time() * 1000), 600.0)
    doc = probe({ENV: sim.to_env()})
    real_now = time.time() * 1000
    # an hour ahead, and running: 10 simulated minutes slept in about a second
    assert 3_600_000 <= int(str(doc["now_ms"])) - real_now <= 3_600_000 + 600 * 60_000
    assert abs(int(str(doc["clock_ms"])) - int(str(doc["now_ms"]))) < 600 * 1000
    assert float(str(doc["slept_s"])) < 5
    assert doc["quality"] == {"synchronised": True, "max_error_ms": 0.0, "est_error_ms": 0.0, "reason": None,
                              "source": "simulated"}


def test_without_it_the_real_clock_and_the_real_check() -> None:
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([sys.executable, "-c", PROBE.replace("minutes=10", "seconds=0.2")], env=env,
                         capture_output=True, text=True, timeout=120, check=True)
    doc = json.loads(out.stdout)
    assert abs(doc["now_ms"] - time.time() * 1000) < 60_000
    assert doc["quality"]["source"] != "simulated"  # the kernel's verdict, whatever this machine's is
