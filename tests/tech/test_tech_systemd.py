"""The unit files pass systemd-analyze verify and carry the promised settings; install-gateway is idempotent."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "configs" / "systemd"
INSTALL = REPO / "scripts" / "install-gateway"
BIN = Path(sys.executable).parent


def settings(unit: Path) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def runnable_copy(unit: Path, folder: Path) -> Path:
    """The unit with its binaries pointing into this venv, so verify judges the unit, not the machine's layout."""
    copy = folder / unit.name
    copy.write_text(unit.read_text().replace("/opt/citygate/bin/", f"{BIN}/"))
    return copy


def verify(*units: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed (.ci/run installs Debian's systemd package)")
    return subprocess.run([tool, "verify", *map(str, units)], capture_output=True, text=True, timeout=120)


def test_unit_files_pass_systemd_analyze_verify_without_a_warning(tmp_path: Path) -> None:
    copies = [runnable_copy(UNITS / name, tmp_path) for name in ("citygate-agent.service", "citygate-collector.service")]
    run = verify(*copies)
    assert run.returncode == 0, run.stderr
    # verify returns 0 even for keys it ignores: any line it prints is a defect of the unit
    assert run.stdout.strip() == "" and run.stderr.strip() == "", run.stdout + run.stderr


def test_verify_would_catch_a_broken_unit(tmp_path: Path) -> None:
    unit = runnable_copy(UNITS / "citygate-agent.service", tmp_path)
    unit.write_text(unit.read_text().replace("Type=notify", "Type=notifyy").replace("ProtectHome=yes", "ProtectHome=maybe"))
    run = verify(unit)
    assert "notifyy" in run.stderr and "maybe" in run.stderr


def test_agent_unit_is_a_hardened_notify_service_with_a_watchdog() -> None:
    s = settings(UNITS / "citygate-agent.service")
    assert s["Type"] == ["notify"]
    assert int(s["WatchdogSec"][0]) > 0
    assert s["Restart"] == ["on-failure"]
    assert s["User"] == ["citygate"] and s["Group"] == ["citygate"]
    assert s["StateDirectory"] == ["citygate"] and s["RuntimeDirectory"] == ["citygate"]
    assert s["ReadWritePaths"] == ["/var/lib/citygate"]
    assert s["ProtectSystem"] == ["strict"] and s["ProtectHome"] == ["yes"]
    assert s["PrivateTmp"] == ["yes"] and s["NoNewPrivileges"] == ["yes"]
    assert s["DevicePolicy"] == ["closed"]  # serial ports come from install-gateway's drop-in
    assert s["ExecStart"][0].endswith("citygate-agent run --config /etc/citygate/agent.toml")
    collector = settings(UNITS / "citygate-collector.service")
    assert collector["User"] == ["citygate"] and collector["ProtectSystem"] == ["strict"]
    assert "serve" in collector["ExecStart"][0]


def install(config: Path, root: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(INSTALL), str(config), "--root", str(root), "--venv", str(BIN.parent), *extra],
                          capture_output=True, text=True, timeout=120)


CONFIG = """
[gateway]
id = "gw-install-1"
commune = "21231"

[uplink]
url = "http://127.0.0.1:9"
token = "secret"

[[bus]]
name = "linky"
type = "tic"
port = "/dev/ttyUSB7"
"""


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_install_gateway_installs_config_unit_and_serial_port_drop_in_and_is_idempotent(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG)
    root = tmp_path / "root"
    first = install(config, root)
    assert first.returncode == 0, first.stdout + first.stderr
    installed = files(root)
    assert installed["etc/citygate/agent.toml"] == config.read_bytes()
    assert installed["etc/systemd/system/citygate-agent.service"] == (UNITS / "citygate-agent.service").read_bytes()
    drop_in = installed["etc/systemd/system/citygate-agent.service.d/devices.conf"].decode()
    assert "[Service]" in drop_in and "DeviceAllow=/dev/ttyUSB7 rw" in drop_in
    assert (root / "etc/citygate/agent.toml").stat().st_mode & 0o777 == 0o640
    assert installed["etc/citygate/registermaps/lamp-lc100.toml"] == (REPO / "configs/registermaps/lamp-lc100.toml").read_bytes()
    assert (root / "etc/citygate").stat().st_mode & 0o777 == 0o750

    second = install(config, root)
    assert second.returncode == 0, second.stderr
    assert files(root) == installed  # nothing changed, no backup of an identical config

    config.write_text(CONFIG.replace("gw-install-1", "gw-install-2"))
    third = install(config, root)
    assert third.returncode == 0, third.stderr
    backups = list((root / "etc/citygate").glob("agent.toml.*"))
    assert len(backups) == 1 and b"gw-install-1" in backups[0].read_bytes()
    assert b"gw-install-2" in (root / "etc/citygate/agent.toml").read_bytes()


def test_install_gateway_refuses_a_bad_config_before_touching_the_installed_one(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(CONFIG)
    root = tmp_path / "root"
    assert install(good, root).returncode == 0
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.replace('commune = "21231"', "commune = 21231"))
    run = install(bad, root)
    assert run.returncode == 2
    assert "gateway.commune" in run.stderr
    assert (root / "etc/citygate/agent.toml").read_text() == CONFIG


def test_install_gateway_makes_the_token_the_service_users_alone_even_one_an_older_install_left_0640(
    tmp_path: Path
) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(CONFIG)
    token = tmp_path / "token"
    token.write_text("cgw_secret\n")
    token.chmod(0o644)
    root = tmp_path / "root"
    done = install(config, root, "--token-file", str(token))
    assert done.returncode == 0, done.stderr
    installed = root / "etc/citygate/token"
    assert installed.read_text() == "cgw_secret\n"
    assert installed.stat().st_mode & 0o777 == 0o600  # no group bit: the citygate group is the technicians'
    installed.chmod(0o640)  # as the install script of an earlier version left it
    assert install(config, root).returncode == 0
    assert installed.stat().st_mode & 0o777 == 0o600
