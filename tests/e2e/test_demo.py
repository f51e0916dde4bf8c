"""`make demo` runs the whole system: data flows from every simulated cabinet, and Ctrl-C stops every process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from simulators.procs import Proc, bin_path
from tests.e2e.e2e_kit import wait_until


def children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in Path(f"/proc/{p}/status").read_text()]


def test_demo_shows_data_from_every_cabinet_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    demo = Proc("demo", [bin_path("citygate-sim"), "demo", "--port", "0", "--workdir", str(workdir)])
    try:
        url = demo.wait_for(r"control centre\s+(http://\S+)/control/", timeout=120).group(1)
        token = demo.wait_for(r"^\s+(cop_\S+)$", timeout=10).group(1)  # the demo's operator (--operator-login)
        demo.wait_for("Ctrl-C stops every process", timeout=60)

        def read(path: str) -> urllib.request.Request:
            return urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})

        def gateways() -> list[dict[str, object]]:
            with urllib.request.urlopen(read("/api/v1/gateways"), timeout=10) as resp:
                return list(json.load(resp)["gateways"])

        wait_until(lambda: all(g["last_seen_ms"] for g in gateways()), 90, "every cabinet to upload")
        assert {g["commune"] for g in gateways()} == {"21231", "21515", "21605"}
        with urllib.request.urlopen(read("/control/"), timeout=10) as resp:
            assert resp.status == 200 and b"<html" in resp.read().lower()

        def summary() -> dict[str, object]:
            with urllib.request.urlopen(read("/control/api/summary"), timeout=10) as resp:
                return dict(json.load(resp))

        # presence comes over the embedded MQTT broker from each agent's control link
        wait_until(lambda: summary()["presence_source"] == "mqtt" and summary()["totals"]["online"] == 4,  # type: ignore[index]
                   60, "the four gateways to be online over MQTT")
        started = children(demo.popen.pid)
        assert len(started) == 1 + 4, "a collector and an agent per cabinet (the simulators run in the demo)"
    finally:
        demo.popen.send_signal(signal.SIGINT)
        demo.popen.wait(60)
    deadline = time.monotonic() + 30
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(started) == []
    assert "stopping the demo" in demo.output()


def test_a_demo_killed_outright_leaves_no_process_behind(tmp_path: Path) -> None:
    demo = Proc("demo", [bin_path("citygate-sim"), "demo", "--port", "0", "--workdir", str(tmp_path / "demo")])
    try:
        demo.wait_for("Ctrl-C stops every process", timeout=120)
        started = children(demo.popen.pid)
        assert len(started) == 5
    finally:
        demo.kill9()
    deadline = time.monotonic() + 60  # each child leaves within its 20 s stop grace at worst
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert alive(started) == []
