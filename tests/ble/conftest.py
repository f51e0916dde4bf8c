"""BLE test fixtures: a real, private D-Bus daemon (without BlueZ on it)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
  </policy>
</busconfig>
"""


@pytest.fixture
def private_dbus(tmp_path: Path) -> Iterator[str]:
    """The address of a dbus-daemon of our own: a system bus on which nothing (no bluetoothd) is registered."""
    daemon = shutil.which("dbus-daemon")
    if daemon is None:
        pytest.fail("dbus-daemon is needed for this test (Debian package dbus-daemon, pulled in by systemd)")
    config = tmp_path / "bus.conf"
    config.write_text(_CONFIG.format(socket=tmp_path / "bus.sock"))
    proc = subprocess.Popen([daemon, f"--config-file={config}", "--nofork", "--print-address=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        address = proc.stdout.readline().strip()
        if not address:
            pytest.fail(f"dbus-daemon did not start (exit code {proc.poll()})")
        yield address
    finally:
        proc.terminate()
        proc.wait(10)
