"""`make demo` shows a living city: on its fast clock the lamps light and dim at 22:00, a lamp fails and
is repaired (its resident's report closes with it), the operator it prints can log in, the agents'
status is green, and a busy port is one clear line."""

from __future__ import annotations

import http.cookiejar
import json
import re
import signal
import socket
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from simulators.procs import Proc, bin_path
from tests.e2e.e2e_kit import wait_until

#: fast enough for a test: lamp-on 2 s after the clock's start, 22:00 within ~25 s, the repair within ~40 s
SPEED = "900"


def test_a_busy_port_is_one_clear_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run([bin_path("citygate-sim"), "demo", "--port", str(port), "--workdir",
                                 str(tmp_path / "demo")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is busy" in result.stderr and "--port 8090" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "demo").exists()  # nothing started, nothing written


def test_the_demo_city_lives_on_its_fast_clock(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    demo = Proc("demo", [bin_path("citygate-sim"), "demo", "--port", "0", "--workdir", str(workdir),
                         "--speed", SPEED, "--poll-s", "1"])
    try:
        url = demo.wait_for(r"control centre\s+(http://\S+)/control/", timeout=120).group(1)
        token = demo.wait_for(r"^\s+(cop_\S+)$", timeout=10).group(1)
        demo.wait_for("Ctrl-C stops every process", timeout=60)
        bearer = {"Authorization": f"Bearer {token}"}

        def get(path: str) -> Any:
            with urllib.request.urlopen(urllib.request.Request(url + path, headers=bearer), timeout=10) as resp:
                return json.load(resp)

        # the operator it printed logs in on the page's form, and is a supervisor
        jar = http.cookiejar.CookieJar()
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        body = urllib.parse.urlencode({"token": token, "next": "/control/"}).encode()
        with browser.open(url + "/control/login", body, timeout=10) as resp:
            assert resp.status == 200 and resp.url.endswith("/control/")
        with browser.open(url + "/control/api/me", timeout=10) as resp:
            me = json.load(resp)
        assert me["name"] == "demo" and "supervisor" in me["roles"]

        def events(gateway: str) -> list[tuple[str, str, dict[str, Any]]]:
            doc = get(f"/api/v1/gateways/{gateway}/events?limit=200")
            return [(e["device"], e["code"], e["detail"]) for e in reversed(doc["events"])]

        def group_levels() -> list[int]:
            return [d["level_pct"] for dev, code, d in events("gw-dijon-0001") if code == "group_level"]

        # the lamps light at dusk, then dim to 70 % at 22:00 (Dijon's program)
        wait_until(lambda: 100 in group_levels(), 60, "the lamps to light at dusk")
        wait_until(lambda: group_levels()[-1:] == [70], 90, "the lamps to dim at 22:00")

        def lamp_now() -> dict[str, Any]:
            """Each quantity's newest value: a sample carries only what changed (report by exception)."""
            now: dict[str, Any] = {}
            for smp in get("/api/v1/gateways/gw-dijon-0001/devices/lamp-001/samples?limit=50")["samples"]:
                for key, value in smp["values"].items():
                    now.setdefault(key, value)  # newest first
            return now

        wait_until(lambda: lamp_now().get("lamp_on") is True and lamp_now().get("level_pct") == 70, 60,
                   "lamp-001 lit at 70 %")

        # lamp-003 fails, a resident reports it, it is repaired: the report closes with it
        def codes() -> list[str]:
            return [code for dev, code, _ in events("gw-dijon-0001") if dev == "lamp-003"]

        wait_until(lambda: "lamp_failure" in codes(), 90, "lamp-003 to fail")
        report = demo.wait_for(r"its page (http://\S+/open311/follow/(\d+))", timeout=60)
        wait_until(lambda: codes()[-1:] == ["lamp_restored"], 120, "lamp-003 to be repaired")

        def report_status() -> str:
            return str(get(f"/open311/v2/requests/{report.group(2)}.json")[0]["status"])

        wait_until(lambda: report_status() == "closed", 60, "the resident's report to close with the lamp")
        with urllib.request.urlopen(report.group(1), timeout=10) as resp:
            assert "Lampadaire réparé" in resp.read().decode()

        # every agent's technician status is green: its clock is the demo's, synchronised
        for gateway in ("gw-sennecey-0001", "gw-dijon-0001"):
            def green(gateway: str = gateway) -> bool:
                status = subprocess.run([bin_path("citygate-agent"), "status", "--socket",
                                         str(workdir / gateway / "agent.sock")], capture_output=True, text=True,
                                        timeout=60)
                return status.returncode == 0 and re.search(r"clock\s+synchronised", status.stdout) is not None

            wait_until(green, 60, f"{gateway}'s status to be green")
    finally:
        demo.popen.send_signal(signal.SIGINT)
        demo.popen.wait(60)
    assert "stopping the demo" in demo.output()
