"""Traffic-count samples as a signals bus journals them (citygate_wire.traffic), for the web tests."""

from __future__ import annotations

from typing import Any

from web_testkit import sample

JUNCTION = "dijon-jaures-tram"
#: detector -> (approach, lane, counts its lane): a speed pair on V1 lane 1, a single loop on V1 lane 2 and V3
DETECTORS = {"N1": ("V1", 1, True), "N1b": ("V1", 1, False), "N2": ("V1", 2, True), "E1": ("V3", 1, True)}


def interval_sample(detector: str, index: int, count: int, *, length_s: int = 60, occupancy: float = 10.0,
                    speed: float | None = None, fault: str | None = None, bus: str = "signals-1") -> dict[str, Any]:
    approach, lane, counts = DETECTORS[detector]
    heavy = count // 10 if speed is not None else None
    return sample(0, f"{bus}.{detector}", (index + 1) * length_s * 1000, junction=JUNCTION, approach=approach,
                  lane=lane, lane_count=counts, interval=index, interval_s=length_s, count_veh=count,
                  occupancy_pct=occupancy, speed_kmh=speed, light_veh=None if heavy is None else count - heavy,
                  heavy_veh=heavy, detector_fault=fault)


def traffic_records(t_ms: int, intervals: int = 3) -> list[dict[str, Any]]:
    """`intervals` minutes of counts ending before `t_ms`, every detector healthy."""
    first = t_ms // 60_000 - intervals
    out = []
    for i in range(first, first + intervals):
        out += [interval_sample("N1", i, 12, speed=38.5), interval_sample("N1b", i, 12),
                interval_sample("N2", i, 9), interval_sample("E1", i, 4, occupancy=3.5)]
    return out
