"""Camera credentials: in a file only the service may read, and never in a log, an event, a state or a URL."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from drivers.base import BusContext
from drivers.cameras.config import CamerasConfig
from drivers.errors import ConfigError
from drivers.registry import parse_bus
from simulators.cameras import CameraSim
from tests.cameras.camkit import PASSWORD, bus_table, cabinet


def _unstarted() -> list[CameraSim]:
    cam = CameraSim("cam-1")
    cam.onvif_port, cam.rtsp_port = 8080, 8554  # never listened on: parsing opens nothing
    return [cam]


def test_a_credentials_file_group_or_others_may_read_is_refused_naming_file_key_and_reason(tmp_path: Path) -> None:
    raw = bus_table(tmp_path, _unstarted())
    secret = tmp_path / "cameras.secret"
    for mode in (0o640, 0o604, 0o660):
        os.chmod(secret, mode)
        with pytest.raises(ConfigError) as info:
            parse_bus(raw, BusContext("bus[2]", tmp_path))
        assert info.value.key == "bus[2].credentials"
        assert str(secret) in info.value.reason and f"(mode {mode:04o})" in info.value.reason
        assert "readable by group or others" in info.value.reason and "chmod 600" in info.value.reason
    os.chmod(secret, 0o600)
    config = parse_bus(raw, BusContext("bus[2]", tmp_path)).config
    assert isinstance(config, CamerasConfig) and config.cameras[0].credentials is not None


def test_a_missing_credentials_file_and_a_table_for_no_camera_are_config_errors(tmp_path: Path) -> None:
    raw = bus_table(tmp_path, _unstarted())
    with pytest.raises(ConfigError, match="cannot read the credentials file") as info:
        parse_bus({**raw, "credentials": "nowhere.secret"}, BusContext("bus[0]", tmp_path))
    assert info.value.key == "bus[0].credentials"
    secret = tmp_path / "cameras.secret"
    secret.write_text('[cam-9]\nuser = "u"\npassword = "p"\n')
    with pytest.raises(ConfigError, match=r"\[cam-9\] names no camera of this bus"):
        parse_bus(raw, BusContext("bus[0]", tmp_path))
    secret.write_text('[cam-1]\nuser = "u"\n')
    with pytest.raises(ConfigError, match="needs a user and a password") as info:
        parse_bus(raw, BusContext("bus[0]", tmp_path))
    assert PASSWORD not in str(info.value)


def test_credentials_in_a_host_or_a_stream_path_are_refused(tmp_path: Path) -> None:
    raw = bus_table(tmp_path, _unstarted())
    cam = raw["camera"][0]
    with pytest.raises(ConfigError, match="credentials go in the credentials file") as info:
        parse_bus({**raw, "camera": [{**cam, "host": "admin:hunter2@10.0.0.5"}]}, BusContext("bus[0]", tmp_path))
    assert info.value.key == "bus[0].camera[0].host" and "hunter2" not in str(info.value)
    stream = {**cam["stream"][0], "path": "/live?user=admin@x"}
    with pytest.raises(ConfigError) as info:
        parse_bus({**raw, "camera": [{**cam, "stream": [stream]}]}, BusContext("bus[0]", tmp_path))
    assert info.value.key == "bus[0].camera[0].stream[0].path"


async def test_no_credentials_in_any_log_line_event_sample_or_state(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with cabinet(tmp_path, 2) as cab:
        good, wrong = cab.cams
        wrong.users = {"watch": "not-the-configured-one"}  # a camera whose password was changed
        await cab.until(lambda: cab.events("camera_onvif_failure", "cam-2")
                        and cab.events("camera_stream_unavailable", "cam-2"))
        assert cab.events("camera_stream_unavailable", "cam-2")[0].detail["rtsp_status"] == 401
        good.rtsp_status = 503
        good.raise_fault("tampering")
        await cab.until(lambda: cab.events("camera_tampering") and cab.events("camera_stream_unavailable", "cam-1"))
        await good.go_offline()
        await cab.until(lambda: cab.events("camera_unreachable"))
        seen = "\n".join([caplog.text, *map(repr, cab.records), *map(repr, cab.bus.states()), repr(cab.bus.cfg)])
    assert cab.events() and caplog.text
    for secret in (PASSWORD, "watch:", "watch@", "@127.0.0.1", "Authorization", "rtsp://watch"):
        assert secret not in seen, secret
