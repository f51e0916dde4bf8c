"""The registry's commands start without the web app: provisioning 1,500 gateways runs `gateway add`
1,500 times, and importing aiohttp, the dashboard and the MQTT link cost each run half a second.

Each command runs for real (a SQLite store in tmp_path) in a fresh interpreter that then writes the
modules it loaded: exact, whatever the machine's load. `serve` is the one command that loads them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: what only `serve` needs: the HTTP server and client, the page, the app, the MQTT link, the instances
SERVE_ONLY = ("aiohttp", "aiohttp.web", "collector.dashboard", "collector.app", "collector.control.link",
              "collector.control.routes", "collector.instances", "collector.access", "aiomqtt")

PROBE = """
import sys
from collector.cli import main
code = 0
try:
    main(sys.argv[2:], prog_name="citygate-collector")
except SystemExit as exc:
    code = exc.code or 0
with open(sys.argv[1], "w") as f:
    f.write("\\n".join([str(code), *sorted(sys.modules)]))
"""


def loaded(tmp_path: Path, *args: str) -> set[str]:
    """The modules `citygate-collector ARGS` loads; the command must succeed."""
    out = tmp_path / "modules.txt"
    env = {**os.environ, "CITYGATE_RETENTION_RAW_DAYS": "90"}
    run = subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, check=False, env=env)
    assert out.exists(), run.stderr
    code, *names = out.read_text().split("\n")
    assert code == "0", (args, run.stdout, run.stderr)
    return set(names)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database with one gateway, and the files the import commands read."""
    tmp = tmp_path_factory.mktemp("registry")
    db = tmp / "collector.db"
    run = subprocess.run([sys.executable, "-c", "from collector.cli import main; main()", "gateway", "add", "gw-1",
                          "--commune", "21231", "--db", str(db), "--token-file", str(tmp / "gw-1.token")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    (tmp / "fleet.json").write_text(json.dumps([{"gateway": "gw-2", "cabinet": "C-2", "commune": "21231",
                                                 "lat": 47.32, "lon": 5.04, "lamps": ["L-1"]}]))
    (tmp / "lamps.csv").write_text("gateway,device,lat,lon\ngw-1,L-7,47.321,5.041\n")
    return tmp


COMMANDS = {
    "gateway add": ["gateway", "add", "gw-9", "--commune", "21231", "--token-file", "{tmp}/gw-9.token"],
    "gateway list": ["gateway", "list"],
    "gateway import": ["gateway", "import", "{tmp}/fleet.json", "--tokens-dir", "{tmp}/tokens"],
    "lamps import": ["lamps", "import", "{tmp}/lamps.csv"],
    "retention --dry-run": ["retention", "--dry-run"],
    "retention run": ["retention", "run"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_registry_command_loads_no_web_app(command: str, registry: Path, tmp_path: Path) -> None:
    args = [a.format(tmp=registry) for a in COMMANDS[command]] + ["--db", str(registry / "collector.db")]
    modules = loaded(tmp_path, *args)
    assert "collector.store_sqlite" in modules  # the command ran on its store
    assert not modules & set(SERVE_ONLY), sorted(modules & set(SERVE_ONLY))

