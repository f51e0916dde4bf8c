"""Each fault a simulated camera can be made to show is seen as its event, once, then its `_cleared`."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.base import BusContext
from drivers.cameras import timesource
from drivers.cameras.config import CamerasConfig
from drivers.cameras.timesource import GROUP
from drivers.errors import ConfigError
from drivers.model import Severity
from drivers.registry import parse_bus
from simulators.cameras import FAULTS, CameraSim
from tests.cameras.camkit import bus_table, cabinet
from tests.plugin_dist import install_entry_points, uninstall


async def test_a_healthy_camera_is_sampled_with_its_identity_and_clock(tmp_path: Path) -> None:
    async with cabinet(tmp_path, 1) as cab:
        await cab.until(lambda: cab.samples("cam-1") and cab.samples("cam-1")[-1].values["streams_ok"] == 1)
        values = cab.samples("cam-1")[-1].values
        assert values["reachable"] is True and values["streams"] == 1
        assert values["firmware"] == "V5.7.3 build 240612" and values["manufacturer"] == "Citygate Sim"
        assert abs(float(values["clock_drift_s"] or 0)) <= 1.0
        assert cab.bus.states()[0].state == "ok"
        (identified,) = cab.events()  # and nothing else: a healthy camera raises nothing
        assert identified.code == "camera_identified" and identified.detail == {
            "streams": 1, "onvif": True, "manufacturer": "Citygate Sim", "model": "SIM-IPC-2",
            "firmware": "V5.7.3 build 240612"}
        # health only: never a SETUP or a PLAY, so never a frame
        assert cab.cams[0].requests.get("DESCRIBE", 0) >= 1
        await cab.until(lambda: cab.cams[0].requests.get("PullMessages"))
        await cab.until(lambda: cab.cams[0].requests["OPTIONS"] >= 2 * len(cab.samples("cam-1")) + 2)
        # one sample per sample_interval_s is journalled; the technician's state follows every poll
        await cab.until(lambda: (cab.bus.states()[0].last_ts_ms or 0) > cab.samples("cam-1")[-1].ts_ms)
        await cab.until(lambda: cab.cams[0].requests["PullMessages"] >= 4)
        # Digest: the camera's challenge is answered again with a counted nonce, not asked for at each request
        assert cab.cams[0].challenged <= 3, cab.cams[0].challenged
        assert "SETUP" not in cab.cams[0].requests and "PLAY" not in cab.cams[0].requests
    assert cab.cams[0].requests.get("Unsubscribe") == 1  # the stopped bus gave its PullPoint back


@pytest.mark.parametrize("fault", sorted(FAULTS))
async def test_an_onvif_fault_event_is_one_event_then_its_cleared(tmp_path: Path, fault: str) -> None:
    async with cabinet(tmp_path, 1) as cab:
        cam = cab.cams[0]
        await cab.until(lambda: cam.requests.get("PullMessages", 0) >= 1)
        cam.raise_fault(fault)
        code = f"camera_{fault}"
        await cab.until(lambda: cab.events(code))
        cam.raise_fault(fault)  # said again by the camera: still one fault
        await cab.until(lambda: cam.requests.get("PullMessages", 0) >= 4)
        cam.clear_fault(fault)
        await cab.until(lambda: cab.events(code + "_cleared"))
        (opened,) = cab.events(code)
        (cleared,) = cab.events(code + "_cleared")
        assert opened.device == "cam-1" and opened.detail["source"] == "vsc0"
        assert opened.severity in (Severity.MAJOR, Severity.MINOR) and cleared.severity is Severity.INFO
        assert cleared.detail["since_ms"] == opened.ts_ms


async def test_a_fault_open_when_the_subscription_starts_is_reported_from_its_initialized_message(
        tmp_path: Path) -> None:
    async with cabinet(tmp_path, 1) as cab:
        cab.cams[0].faults["storage_failure"] = True  # before the driver subscribes
        await cab.until(lambda: cab.events("camera_storage_failure"))
        assert cab.events("camera_storage_failure")[0].severity is Severity.MAJOR


@pytest.mark.parametrize("status", [503, 404])
async def test_a_stream_refused_is_one_event_with_its_rtsp_status_then_cleared(tmp_path: Path, status: int) -> None:
    async with cabinet(tmp_path, 1) as cab:
        cam = cab.cams[0]
        await cab.until(lambda: cab.samples("cam-1"))
        cam.rtsp_status = status
        await cab.until(lambda: cab.events("camera_stream_unavailable"))
        before = cam.requests.get("OPTIONS", 0)
        await cab.until(lambda: cam.requests.get("OPTIONS", 0) >= before + 5)  # many polls, still one event
        cam.rtsp_status = 200
        await cab.until(lambda: cab.events("camera_stream_unavailable_cleared"))
        (ev,) = cab.events("camera_stream_unavailable")
        assert ev.detail == {"stream": "/stream1", "rtsp_status": status, "reason": ev.detail["reason"]}
        assert len(cab.events("camera_stream_unavailable_cleared")) == 1
        assert cab.events("camera_unreachable") == []  # ONVIF answered: the camera is there


async def test_an_rtsp_port_that_stops_answering_while_onvif_does_is_a_stream_fault_without_status(
        tmp_path: Path) -> None:
    async with cabinet(tmp_path, 1) as cab:
        cam = cab.cams[0]
        await cab.until(lambda: cab.samples("cam-1"))
        await cam.stop_rtsp()
        await cab.until(lambda: cab.events("camera_stream_unavailable"))
        (ev,) = cab.events("camera_stream_unavailable")
        assert ev.detail["rtsp_status"] is None and "Connect call failed" in ev.detail["reason"]
        await cam.start_rtsp()
        await cab.until(lambda: cab.events("camera_stream_unavailable_cleared"))
        assert cab.events("camera_unreachable") == []


async def test_a_resolution_change_against_the_config_is_an_event_and_its_return_clears_it(tmp_path: Path) -> None:
    async with cabinet(tmp_path, 1) as cab:
        cam = cab.cams[0]
        await cab.until(lambda: cab.samples("cam-1"))
        cam.width, cam.height = 1280, 720
        await cab.until(lambda: cab.events("camera_stream_changed"))
        (ev,) = cab.events("camera_stream_changed")
        assert ev.detail["expected"] == {"codec": "H264", "width": 1920, "height": 1080}
        assert ev.detail["found"] == {"codec": "H264", "width": 1280, "height": 720}
        cam.width, cam.height = 1920, 1080
        await cab.until(lambda: cab.events("camera_stream_changed_cleared"))
        assert len(cab.events("camera_stream_changed")) == 1


async def test_a_camera_clock_drifting_is_an_event_while_the_gateway_clock_is_trusted(tmp_path: Path) -> None:
    async with cabinet(tmp_path, 1, drift_max_s=2.0) as cab:
        cam = cab.cams[0]
        await cab.until(lambda: cab.samples("cam-1"))
        cam.drift_s = 40.0
        await cab.until(lambda: cab.events("camera_clock_drift"))
        assert 38.0 <= cab.events("camera_clock_drift")[0].detail["drift_s"] <= 42.0
        # the UsernameToken's Created follows the camera's clock: ONVIF still answers while it drifts
        await cab.until(lambda: float(cab.samples("cam-1")[-1].values["clock_drift_s"] or 0) > 30)
        cam.drift_s = 0.0
        await cab.until(lambda: cab.events("camera_clock_drift_cleared"))
        assert cab.events("camera_onvif_failure") == []


async def test_an_untrusted_gateway_clock_judges_no_camera_clock(tmp_path: Path) -> None:
    """The time source is an entry point of citygate.time_sources, as another package would add one."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "camtime_unsynced.py").write_text(
        "class Unsynced:\n    def is_synchronized(self) -> bool:\n        return False\n")
    install_entry_points(site, "camtime", {GROUP: {"unsynced": "camtime_unsynced:Unsynced"}})
    try:
        async with cabinet(tmp_path, 1, time_source="unsynced") as cab:
            cab.cams[0].drift_s = 40.0
            await cab.until(lambda: cab.samples("cam-1")
                            and float(cab.samples("cam-1")[-1].values["clock_drift_s"] or 0) > 30)
            assert type(cab.bus.time_sync).__name__ == "Unsynced"
            assert cab.events("camera_clock_drift") == []
    finally:
        uninstall(site)


def test_the_time_source_is_kernel_by_default_and_an_unknown_one_is_a_config_error(tmp_path: Path) -> None:
    cam = CameraSim("cam-1")
    cam.onvif_port, cam.rtsp_port = 8080, 8554
    raw = bus_table(tmp_path, [cam])
    del raw["time_source"]
    config = parse_bus(raw, BusContext("bus[0]", tmp_path)).config
    assert isinstance(config, CamerasConfig) and config.time_source == "kernel"
    source = timesource.load("kernel")
    assert source is not None and type(source).__name__ == "KernelTimeSync"
    assert isinstance(source.is_synchronized(), bool)
    with pytest.raises(ConfigError, match="'ntp-please': expected 'kernel' or 'none'") as info:
        parse_bus({**raw, "time_source": "ntp-please"}, BusContext("bus[0]", tmp_path))
    assert info.value.key == "bus[0].time_source"


async def test_one_camera_offline_is_one_event_after_the_retries_then_cleared(tmp_path: Path) -> None:
    async with cabinet(tmp_path, 2) as cab:
        cam = cab.cams[0]
        await cab.until(lambda: cab.samples("cam-1") and cab.samples("cam-2"))
        await cam.go_offline()
        await cab.until(lambda: cab.events("camera_unreachable"))
        (ev,) = cab.events("camera_unreachable")
        assert ev.device == "cam-1" and "Connect call failed" in ev.detail["reason"]
        state = {s.device: s for s in cab.bus.states()}
        assert state["cam-1"].state == "failing" and state["cam-2"].state == "ok"
        await cam.go_online()
        await cab.until(lambda: cab.events("camera_unreachable_cleared"))
        assert len(cab.events("camera_unreachable")) == 1
        assert cab.events("cameras_dark") == []


async def test_an_unreachable_camera_is_asked_less_and_less_often_up_to_the_longest_backoff(tmp_path: Path) -> None:
    async with cabinet(tmp_path, 2, max_backoff_s=0.4) as cab:
        await cab.until(lambda: cab.samples("cam-1") and cab.samples("cam-2"))
        await cab.cams[0].go_offline()
        await cab.until(lambda: cab.events("camera_unreachable"))
        before = {s.device: s.consecutive_failures for s in cab.bus.states()}["cam-1"]
        await asyncio.sleep(2.0)
        after = {s.device: s.consecutive_failures for s in cab.bus.states()}["cam-1"]
        # every 0.05 s it would be 40 more polls; doubling to 0.4 s it is 5 or 6 (fewer on a loaded machine)
        assert 1 <= after - before <= 8, (before, after)
        await cab.cams[0].go_online()
        await cab.until(lambda: cab.events("camera_unreachable_cleared"), timeout_s=3)  # the backoff is capped


async def test_a_cabinet_whose_cameras_all_go_dark_is_one_cabinet_event_not_one_per_camera(tmp_path: Path) -> None:
    async with cabinet(tmp_path, 4) as cab:
        await cab.until(lambda: all(cab.samples(c.id) for c in cab.cams))
        for cam in cab.cams:  # the switch dies: all at once
            await cam.go_offline()
        await cab.until(lambda: cab.events("cameras_dark"))
        await cab.until(lambda: all(s.consecutive_failures >= 4 for s in cab.bus.states()))
        (dark,) = cab.events("cameras_dark")
        assert dark.device == "cameras" and dark.severity is Severity.CRITICAL and dark.detail["cameras"] == 4
        assert cab.events("camera_unreachable") == []
        assert cab.events("camera_stream_unavailable") == []
        for cam in cab.cams:
            await cam.go_online()
        await cab.until(lambda: cab.events("cameras_dark_cleared"))
        await cab.until(lambda: all(s.state == "ok" for s in cab.bus.states()), timeout_s=8)
        assert len(cab.events("cameras_dark_cleared")) == 1
        assert cab.events("camera_unreachable") == []


async def test_a_camera_still_dark_when_its_cabinet_comes_back_is_reported_on_its_own(tmp_path: Path) -> None:
    async with cabinet(tmp_path, 3) as cab:
        await cab.until(lambda: all(cab.samples(c.id) for c in cab.cams))
        for cam in cab.cams:
            await cam.go_offline()
        await cab.until(lambda: cab.events("cameras_dark"))
        for cam in cab.cams[:2]:
            await cam.go_online()
        await cab.until(lambda: cab.events("camera_unreachable"), timeout_s=8)
        assert [e.device for e in cab.events("camera_unreachable")] == ["cam-3"]
        assert len(cab.events("cameras_dark_cleared")) == 1
