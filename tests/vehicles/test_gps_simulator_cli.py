"""`citygate-sim gps`: a GPX route and a scheduled fault, served on a pty the real driver reads."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.base import BusContext
from drivers.model import Event, Sample
from drivers.registry import make_bus
from simulators.gps import load_gpx
from simulators.procs import bin_path
from tests.meters.meters_testkit import running, until

GPX = """<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><name>Tournée 3</name><trkseg>
  <trkpt lat="47.3100" lon="5.0100"><name>Rue Monge</name></trkpt>
  <trkpt lat="47.3100" lon="5.0200"></trkpt>
  <trkpt lat="47.3150" lon="5.0200"><name>Rue Berbisey</name></trkpt>
 </trkseg></trk>
</gpx>
"""


def test_a_gpx_file_gives_its_track_points_with_their_names(tmp_path: Path) -> None:
    (tmp_path / "r.gpx").write_text(GPX)
    points = load_gpx(tmp_path / "r.gpx")
    assert [(p.lat, p.lon, p.name) for p in points] == [(47.31, 5.01, "Rue Monge"), (47.31, 5.02, None),
                                                         (47.315, 5.02, "Rue Berbisey")]
    (tmp_path / "bad.gpx").write_text("<gpx>")
    with pytest.raises(ValueError, match="not XML"):
        load_gpx(tmp_path / "bad.gpx")


async def test_the_command_drives_the_gpx_route_with_a_tunnel(tmp_path: Path) -> None:
    (tmp_path / "r.gpx").write_text(GPX)
    link = tmp_path / "gps0"
    proc = await asyncio.create_subprocess_exec(
        bin_path("citygate-sim"), "gps", "--gpx", str(tmp_path / "r.gpx"), "--speed", "50", "--period", "0.05",
        "--link", str(link), "--run", "20", "--fault", "tunnel@20:30", stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(proc.stdout.readline(), 20)
        assert first.decode().startswith("GNSS receiver (NMEA 0183, 9600 8N1) on /dev/pts/")
        bus = make_bus({"name": "gps", "type": "gnss", "port": str(link), "silent_after_s": 0.8,
                        "clock_offset_alarm_s": 0, "thin_interval_s": 1}, BusContext("bus[0]", tmp_path))
        async with running(bus) as records:
            await until(lambda: any(isinstance(r, Event) and r.code == "communication_restored" for r in records))
        assert b"epoch 20: tunnel for 30 epochs" in await asyncio.wait_for(proc.stdout.readline(), 10)
    finally:
        proc.terminate()
        await proc.wait()
    positions = [r for r in records if isinstance(r, Sample)]
    assert positions and all(47.3099 <= float(str(s.values["latitude_deg"])) <= 47.3151 for s in positions)
    assert all(5.0099 <= float(str(s.values["longitude_deg"])) <= 5.0201 for s in positions)
    codes = [r.code for r in records if isinstance(r, Event)]
    assert codes.index("communication_failure") < codes.index("communication_restored")
