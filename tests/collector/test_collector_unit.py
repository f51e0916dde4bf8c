"""The shipped collector unit keeps the database URL off the command line (ps shows every
process's arguments to every user) and still passes systemd-analyze verify."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "configs" / "systemd" / "citygate-collector.service"
BIN = Path(sys.executable).parent


def values(key: str) -> list[str]:
    """The values of `key` in the unit, in order (comments start with # or ;, so never match)."""
    return [v.strip() for v in re.findall(rf"^{key}=(.*)$", UNIT.read_text(), re.MULTILINE)]


def test_the_database_url_reaches_serve_by_its_environment_not_its_arguments() -> None:
    (start,) = values("ExecStart")
    assert "serve" in start and "--db" not in start and "CITYGATE_DB" not in start
    assert "-/etc/citygate/collector.env" in values("EnvironmentFile")
    assert any("CITYGATE_DB=" in e for e in values("Environment"))  # the default, overridden by the file
    assert any("CITYGATE_TRUSTED_PROXIES=127.0.0.1" in e for e in values("Environment"))


def test_the_collector_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    assert tool is not None, "systemd-analyze is not installed (.ci/run installs Debian's systemd package)"
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace("/opt/citygate/bin/", f"{BIN}/"))
    run = subprocess.run([tool, "verify", str(copy)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "" and run.stderr.strip() == "", run.stdout + run.stderr
