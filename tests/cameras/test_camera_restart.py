"""A fault open when the agent stops is closed by the restarted agent when it ends: the open faults are
kept in the gateway's state folder, so the collector never shows a fault that ended as open for ever."""

from __future__ import annotations

import json
from pathlib import Path

from simulators.cameras import CameraSim
from tests.cameras.camkit import PASSWORD, running


async def _cams(n: int) -> list[CameraSim]:
    cams = [CameraSim(f"cam-{i + 1}", password=PASSWORD) for i in range(n)]
    for cam in cams:
        await cam.go_online()
    return cams


async def test_tampering_and_a_refused_stream_open_at_a_restart_are_cleared_by_the_restarted_bus(
        tmp_path: Path) -> None:
    cams = await _cams(2)
    try:
        async with running(tmp_path, cams) as before:
            await before.until(lambda: cams[0].requests.get("PullMessages"))
            cams[0].raise_fault("tampering")
            cams[1].rtsp_status = 503
            await before.until(lambda: before.events("camera_tampering") and before.events("camera_stream_unavailable"))
        saved = json.loads((tmp_path / "state" / "cameras-cameras.faults.json").read_text())
        assert {c: [f[0] for f in v["open"]] for c, v in saved["cameras"].items()} == {
            "cam-1": ["camera_tampering"], "cam-2": ["camera_stream_unavailable"]}
        cams[0].clear_fault("tampering")  # both faults end while the agent is down
        cams[1].rtsp_status = 200
        async with running(tmp_path, cams) as after:
            await after.until(lambda: after.events("camera_tampering_cleared")
                              and after.events("camera_stream_unavailable_cleared"))
            (cleared,) = after.events("camera_tampering_cleared")
            assert cleared.detail["since_ms"] == before.events("camera_tampering")[0].ts_ms
            assert after.events("camera_tampering") == [] and after.events("camera_stream_unavailable") == []
    finally:
        for cam in cams:
            await cam.go_offline()


async def test_a_dark_cabinet_and_an_unreachable_camera_at_a_restart_are_cleared_when_they_come_back(
        tmp_path: Path) -> None:
    cams = await _cams(2)
    try:
        async with running(tmp_path, cams) as before:
            await before.until(lambda: all(before.samples(c.id) for c in cams))
            for cam in cams:
                await cam.go_offline()
            await before.until(lambda: before.events("cameras_dark"))
        for cam in cams:
            await cam.go_online()
        async with running(tmp_path, cams) as after:
            await after.until(lambda: after.events("cameras_dark_cleared"))
            assert after.events("cameras_dark") == [] and after.events("camera_unreachable") == []
        (tmp_path / "state" / "cameras-cameras.faults.json").write_text("{not json")
        async with running(tmp_path, cams) as third:  # an unreadable file: faults are seen afresh
            await third.until(lambda: third.events("camera_identified"))
    finally:
        for cam in cams:
            await cam.go_offline()
