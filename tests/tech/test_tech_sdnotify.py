"""systemd sees READY=1 after start-up, WATCHDOG=1 only while every loop progresses, and STOPPING=1 on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tech_kit import NotifyListener, agent_config, cli_json, start_agent

from edge_agent.sdnotify import Notifier, watchdog_interval_s
from simulators.procs import free_port

WATCHDOG_USEC = 600_000  # WatchdogSec=0.6 s: the agent pings every 0.3 s


@pytest.fixture
def notify(tmp_path: Path) -> Iterator[NotifyListener]:
    listener = NotifyListener(tmp_path / "notify.sock")
    yield listener
    listener.close()


def wedge_config(tmp_path: Path, uplink: str) -> Path:
    return agent_config(tmp_path, uplink=uplink, extra="""
[watchdog]
bus_silence_s = 2

[[bus]]
name = "wedge"
type = "test-wedge"
device = "wedge-1"
stall_file = "stall"
""")


def test_ready_then_watchdog_while_healthy_even_with_the_uplink_down_then_stopping(
    tmp_path: Path, notify: NotifyListener
) -> None:
    # nothing listens on this port: every upload fails, which must not look like a stuck agent
    config = wedge_config(tmp_path, f"http://127.0.0.1:{free_port()}")
    agent = start_agent(config, test_bus=True,
                        env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    try:
        ready = notify.wait_for("READY=1", timeout=30)
        first_ping = notify.wait_for("WATCHDOG=1", timeout=30)
        assert first_ping >= ready
        time.sleep(3)  # longer than the bus silence limit and several failed uploads
        pings = notify.count("WATCHDOG=1", since=first_ping)
        assert pings >= 5, notify.lines()
        code, status = cli_json("status", "--config", str(config))
        assert status["uplink"]["consecutive_failures"] >= 1
        assert status["healthy"] is True
        assert {loop["name"] for loop in status["loops"]} == {"journal", "uploader", "bus wedge"}
        assert code == 1  # the failing uplink needs attention
        assert notify.count("STOPPING=1") == 0
        stop_at = time.monotonic()
        assert agent.stop(timeout=30) == 0
        stopping = notify.wait_for("STOPPING=1", timeout=5)
        assert stopping >= stop_at
        assert "READY=1" not in [line for t, line in notify.lines() if t > stopping]
    finally:
        agent.kill9()


def test_watchdog_stops_when_a_bus_poller_hangs_and_status_names_it(tmp_path: Path, notify: NotifyListener) -> None:
    config = wedge_config(tmp_path, f"http://127.0.0.1:{free_port()}")
    agent = start_agent(config, test_bus=True,
                        env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC)})
    try:
        notify.wait_for("READY=1", timeout=30)
        notify.wait_for("WATCHDOG=1", timeout=30)
        (tmp_path / "stall").touch()
        stuck_at = notify.wait_for("STATUS=stuck", timeout=30)
        stuck = next(line for _, line in notify.lines() if line.startswith("STATUS=stuck"))
        assert "bus wedge" in stuck, stuck
        time.sleep(2.0)  # three watchdog periods
        assert notify.count("WATCHDOG=1", since=stuck_at) == 0, notify.lines()
        code, status = cli_json("status", "--config", str(config))
        assert code == 1
        assert status["healthy"] is False
        loops = {loop["name"]: loop for loop in status["loops"]}
        assert loops["bus wedge"]["healthy"] is False and loops["bus wedge"]["age_s"] > 2
        assert loops["journal"]["healthy"] and loops["uploader"]["healthy"]
        # a stuck agent still stops cleanly when systemd gives up on it
        assert agent.stop(timeout=30) == 0
        notify.wait_for("STOPPING=1", timeout=5)
        assert "stuck loop(s): bus wedge" in agent.output()
    finally:
        agent.kill9()


def test_no_watchdog_pings_unless_systemd_asks_for_them(tmp_path: Path, notify: NotifyListener) -> None:
    config = agent_config(tmp_path, uplink=f"http://127.0.0.1:{free_port()}")
    agent = start_agent(config, env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        notify.wait_for("READY=1", timeout=30)
        time.sleep(1.5)
        assert notify.count("WATCHDOG=1") == 0
    finally:
        agent.stop()


def test_notifier_reaches_an_abstract_socket_and_is_silent_without_one() -> None:
    name = f"citygate-test-{os.getpid()}-{time.monotonic_ns()}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind("\0" + name)
    receiver.settimeout(5)
    try:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": "@" + name})
        assert notifier.send("READY=1", "STATUS=running")
        assert receiver.recv(100) == b"READY=1\nSTATUS=running"
        notifier.close()
    finally:
        receiver.close()
    quiet = Notifier.from_env({})
    assert not quiet.enabled and quiet.send("READY=1") is False


def test_notifier_survives_a_vanished_systemd_socket(tmp_path: Path) -> None:
    notifier = Notifier(str(tmp_path / "gone.sock"))
    assert notifier.send("WATCHDOG=1") is False  # logged, not raised: the agent keeps working


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process_only() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval_s({}) is None


def test_sigterm_is_what_sends_stopping(tmp_path: Path, notify: NotifyListener) -> None:
    config = agent_config(tmp_path, uplink=f"http://127.0.0.1:{free_port()}")
    agent = start_agent(config, env={"NOTIFY_SOCKET": str(notify.path)})
    try:
        notify.wait_for("READY=1", timeout=30)
        assert notify.count("STOPPING=1") == 0
        agent.popen.send_signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", timeout=10)
        assert agent.popen.wait(30) == 0
        assert not (tmp_path / "run" / "agent.sock").exists()  # the socket goes with the agent
    finally:
        agent.kill9()


def test_a_task_deaf_to_cancellation_cannot_keep_the_agent_from_stopping(tmp_path: Path) -> None:
    config = agent_config(tmp_path, uplink=f"http://127.0.0.1:{free_port()}", extra="""
[[bus]]
name = "deaf"
type = "test-wedge"
device = "deaf-1"
stall_file = "stall"
swallow_cancel = true
""")
    agent = start_agent(config, test_bus=True)
    try:
        agent.wait_for("agent .* started", timeout=30)
        (tmp_path / "stall").touch()
        time.sleep(0.5)
        began = time.monotonic()
        agent.popen.send_signal(signal.SIGTERM)
        code = agent.popen.wait(60)
        took = time.monotonic() - began
    finally:
        agent.kill9()
    assert code == 70, agent.output()[-3000:]
    assert 15 < took < 40
    out = agent.output()
    assert "still running 20 s after the stop" in out
    assert "_deaf_wait" in out  # the log shows where the stuck task waits
