"""`citygate-collector alarms ...` as an operator types it: a real process, an 80-column terminal."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from citygate_wire.common import now_ms
from collector.alarms.model import Filters
from collector.store import open_store
from tests.alarms.alarms_testkit import OTHER_COMMUNE, Feed, bus_lost

CLI = Path(sys.executable).parent / "citygate-collector"


def cli(*args: str, check: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80", "TZ": "UTC", "USER": "root"}
    done = subprocess.run([str(CLI), *args], capture_output=True, text=True, env=env, timeout=120, cwd=cwd)
    if check:
        assert done.returncode == 0, done.stderr
    for line in (done.stdout + done.stderr).splitlines():
        assert len(line) <= 80, f"wider than 80 columns: {line!r}"
    return done


def seed(db_url: str) -> tuple[int, int]:
    """A lost bus of 9 lamps, and a door forced open at another cabinet: (the bus alarm's id, the door's)."""
    async def run() -> tuple[int, int]:
        async with open_store(db_url) as store:
            feed = Feed(store)
            await store.add_operator("alice", "hash-of-alices-token", now_ms())
            await feed.upload("gw-dijon-0001-long-name", *bus_lost([f"lamp-{i:02d}" for i in range(9)], 100))
            await feed.gateway("gw-b", OTHER_COMMUNE)
            await feed.mqtt("gw-b", "cabinet", "door_open", 300, "critical")
            await feed.folded()
            alarms = (await store.list_alarms(Filters(), now_ms()))[0]
            by_code = {a.code: a.id for a in alarms}
            return by_code["communication_failure"], by_code["door_open"]

    return asyncio.run(run())


def test_list_show_ack_assign_comment_clear(tmp_path: Path) -> None:
    db_url = str(tmp_path / "collector.db")
    bus, door = seed(db_url)
    listed = cli("alarms", "list", "--db", db_url).stdout
    lines = listed.splitlines()
    assert lines[0].split() == ["ID", "STAT", "SEV", "SINCE", "KIND", "GATEWAY", "DEVICES"]
    assert lines[1].split()[:3] == [str(door), "open", "crit"]  # the most severe first
    assert "communication_failure" in lines[2] and "9/9" in lines[2] and "gw-dijon-0001-l…" in lines[2]
    assert "2 shown of 2; open 2, acknowledged 0" in listed
    cli("alarms", "ack", str(bus), "--comment", "crew called", "--db", db_url)
    cli("alarms", "assign", str(bus), "alice", "--db", db_url)
    cli("alarms", "comment", str(bus), "the feeder cable was cut by road works near the cabinet; the crew "
        "is splicing it and expects the bus back within the hour", "--db", db_url)
    shown = cli("alarms", "show", str(bus), "--db", db_url).stdout
    assert "9, 9 still failing" in shown and "assigned to alice" in shown
    assert "acknowledge" in shown and "crew called" in shown and "expects the bus back" in shown  # wrapped
    assert shown.count("failing") == 10  # the summary line and each of the 9 devices
    cleared = cli("alarms", "clear", str(bus), "--comment", "cable spliced", "--db", db_url)
    assert cleared.stdout.strip() == f"alarm {bus} cleared by root"
    after = cli("alarms", "list", "--state", "all", "--severity", "major", "--db", db_url).stdout
    assert f"{bus:>6} clrd maj" in after and "1 shown of 1; open 0, acknowledged 0, cleared in 24 h 1" in after
