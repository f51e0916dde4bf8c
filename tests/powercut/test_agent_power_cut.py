"""Power cut 20 times while the agent polls lamp controllers and uploads, its journal on a filesystem
that forgets what was not synced (tests/powercut/lazyfs.py): every record the journal committed
survives the cut and reaches the collector exactly once, and the journal opens without repair.

kill -9 (tests/e2e/test_agent_kill9.py) leaves the kernel's page cache to write the journal out; a
power cut does not. Each cut here: SIGKILL the agent, then the filesystem loses every write the
journal did not fsync (all of them; or all but a torn prefix of each file's last page; or a random
half of the pages, whole, and a torn last page), then unmount, remount, restart on the same state.
The moment is, in turn, an exact point of the filesystem's write stream (it freezes after the Nth
write or sync, mid-commit as often as not), one during the agent's start (opening its journal),
or a wall-clock moment while it polls and uploads.

The agent runs with the tree's journal settings (no [journal] section) and the journal is opened
through the agent's own code, so this proves whatever format and settings the journal ships with.

What "committed" means here: a record the collector stored (it was read from the journal after its
commit), or one the agent's local API counted in the journal before the cut. After each cut, the
disk's journal, on a copy so the agent's own open finds the disk untouched, must pass
`PRAGMA integrity_check`, open as the agent opens it with nothing logged at warning or above,
number its next record after every committed one, and hold every committed record the collector
lacks, each still the same record. At the end the collector holds each seq once, with no gap.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import shutil
import signal
import sqlite3
import sys
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from drivers.model import Event, Severity
from edge_agent.agent import Agent
from edge_agent.cli_client import AgentClient, Unreachable
from edge_agent.config import load_config
from simulators.procs import Proc, add_gateway, bin_path, free_port, start_collector, wait_tcp
from tests.e2e.e2e_kit import stored_samples, stored_seqs, wait_until
from tests.e2e.test_agent_kill9 import GW, LAMPS, REGMAP, agent_config
from tests.powercut.powercut_kit import LazyMount, fuse_available

CUTS = 20
STANDBY = Path(__file__).with_name("standby_agent.py")
CUT_MODES = ("drop", "tear", "scatter")
JOURNAL_TROUBLE = re.compile(r"level=(warning|error|critical) logger=citygate\.journal")


@dataclass
class Recovered:
    """The journal the disk holds after a cut, as the agent's next start will find it."""

    integrity: str
    next_seq: int  # the seq the journal gives the next record it commits
    records: dict[int, dict[str, Any]]  # seq -> wire record still to upload
    # what the journal logged at warning or above while opening, and whether the open changed its format
    complaints: list[str]


class _Complaints(logging.Handler):
    """The journal's log records at warning or above: a repair, a recovery, a lost file."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "citygate.journal" or record.name.startswith("citygate.journal."):
            self.lines.append(f"{record.name}: {record.getMessage()}")


async def _open_as_the_agent(config: Path) -> tuple[int, dict[int, dict[str, Any]]]:
    """Open the journal the way the agent does, commit one probe record: its seq is the next one."""
    async with Agent(load_config(config)).journal as journal:
        journal.append(Event("powercut-probe", int(time.time() * 1000), "probe", Severity.INFO, {}))
        await journal.flush()
        batch = await journal.read_pending(10**7, 1 << 40)
    assert batch is not None
    records = {seq: orjson.loads(wire) for seq, wire in zip(batch.seqs, batch.records, strict=True)}
    del records[batch.last_seq]
    return batch.last_seq, records


def recover(disk_state: Path, scratch: Path, url: str, token_file: Path) -> Recovered:
    """Read what the cut left on `disk_state`, on copies: the agent's own open finds the disk untouched."""
    copies = [scratch / "integrity", scratch / "opened"]
    for copy in copies:
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(disk_state, copy, ignore=shutil.ignore_patterns("*.sock"))
    integrity, tables, found = _inspect(copies[0] / "journal.db")
    config = scratch / "opened.toml"
    config.write_text(agent_config(copies[1], url, token_file, None))
    complaints = _Complaints()
    root = logging.getLogger()
    root.addHandler(complaints)
    try:
        next_seq, records = asyncio.run(_open_as_the_agent(config))
    finally:
        root.removeHandler(complaints)
    if tables and found != (left := _inspect(copies[1] / "journal.db")[2]):
        # an open that rewrites the format marker took an upgrade or repair path
        complaints.lines.append(f"the open changed PRAGMA user_version from {found} to {left}")
    return Recovered(integrity, next_seq, records, complaints.lines)


def _inspect(db: Path) -> tuple[str, int, int]:
    """(PRAGMA integrity_check, tables, PRAGMA user_version) of a journal file."""
    con = sqlite3.connect(db)
    try:
        integrity = "; ".join(row[0] for row in con.execute("PRAGMA integrity_check"))
        tables = con.execute("SELECT COUNT(*) FROM sqlite_master WHERE type='table'").fetchone()[0]
        return integrity, tables, con.execute("PRAGMA user_version").fetchone()[0]
    finally:
        con.close()


@dataclass
class Ledger:
    """What the journal has promised so far, checked after every cut."""

    first_seq: int | None = None
    next_seq: int = 0
    # seq -> (kind, device, ts_ms) of each record seen in a recovered journal: a seq never changes record
    promised: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    numbered: list[int] = field(default_factory=list)  # records numbered before each cut, for messages

    def after_cut(self, cut: int, rec: Recovered, stored: list[int], seen: int | None) -> None:
        where = f"after power cut {cut}"
        assert rec.integrity == "ok", f"{where}: PRAGMA integrity_check says {rec.integrity}"
        assert not rec.complaints, f"{where}: the journal complained while opening: {rec.complaints}"
        last = rec.next_seq - 1
        committed = max([*stored, *([seen] if seen is not None else [])], default=None)
        assert committed is None or last >= committed, (
            f"{where}: the journal would number its next record {rec.next_seq}, but seq {committed} was "
            "committed before the cut: committed records were lost and their seqs would be reused")
        assert last >= self.next_seq - 1, f"{where}: the journal's numbering went back from {self.next_seq}"
        held = set(stored) | set(rec.records)
        if self.first_seq is None and held:
            self.first_seq = min(held)
        if self.first_seq is not None:
            missing = sorted(set(range(self.first_seq, last + 1)) - held)
            assert not missing, (
                f"{where}: {len(missing)} records numbered before the journal's next seq {rec.next_seq} are "
                f"neither in the journal nor in the collector (seqs {missing[0]}..{missing[-1]}): committed "
                "records were lost, or the journal was recreated")
            assert min(held) == self.first_seq, f"{where}: records before the first seq {self.first_seq} appeared"
        for seq, doc in rec.records.items():
            key = (doc["kind"], doc["device"], doc["ts_ms"])
            assert self.promised.setdefault(seq, key) == key, (
                f"{where}: seq {seq} was {self.promised[seq]} in an earlier journal, now {key}")
        self.numbered.append(rec.next_seq - self.next_seq if self.next_seq else 0)
        self.next_seq = rec.next_seq


@dataclass
class Watch:
    """What the test can see the journal commit: the local API's count, the collector's store."""

    client: AgentClient
    db: Path

    def newest(self) -> int | None:
        try:
            last = self.client.call("GET", "journal").get("last_seq")
        except Unreachable:
            last = None
        return max([s for s in (last, max(stored_seqs(self.db, GW), default=None)) if s is not None], default=None)

    def committed(self, seconds: float, *, beyond: int | None = None) -> int | None:
        """Watch for `seconds` (counted once a seq after `beyond` is committed, if given: 30 s at
        most): the highest seq seen committed."""
        seen: int | None = None
        limit = time.monotonic() + 30
        deadline = None if beyond is not None else time.monotonic() + seconds
        while deadline is None or time.monotonic() < deadline:
            newest = self.newest()
            seen = newest if seen is None or (newest or 0) > seen else seen
            if deadline is None and ((seen or 0) > (beyond or 0) or time.monotonic() > limit):
                deadline = time.monotonic() + seconds
            time.sleep(0.05)
        return seen


def assert_journal_quiet(agent: Proc) -> None:
    trouble = [line for line in agent.output().splitlines() if JOURNAL_TROUBLE.search(line)]
    assert not trouble, "the journal logged trouble:\n" + "\n".join(trouble[:10])


@contextmanager
def street(tmp_path: Path) -> Iterator[tuple[Path, str, Path, int]]:
    """A collector (SQLite store) and a lamp simulator: (store, collector URL, token file, simulator port)."""
    db = tmp_path / "collector.db"
    token_file = tmp_path / "token"
    add_gateway(str(db), GW, "21231", token_file)
    collector, url = start_collector(str(db))
    sim_port = free_port()
    sim = Proc("lamps", [bin_path("citygate-sim"), "lamps", "--tcp", f"127.0.0.1:{sim_port}", "--units",
                         f"1-{LAMPS}", "--register-map", str(REGMAP)])
    try:
        wait_tcp("127.0.0.1", sim_port)
        yield db, url, token_file, sim_port
    finally:
        sim.stop()
        collector.stop()


def upload_the_rest(agents: Agents, db: Path, upto: int) -> None:
    """Restart once more until the collector holds every record up to `upto`; stop cleanly."""
    with agents.running() as agent:
        agent.wait_for("agent .* started", timeout=60)
        wait_until(lambda: max(stored_seqs(db, GW), default=0) >= upto, 60, f"seq {upto} to reach the collector")
        agent.popen.send_signal(signal.SIGTERM)
        agent.popen.wait(30)
    assert agent.popen.returncode == 0, agent.output()[-6000:]
    assert_journal_quiet(agent)


class Agents:
    """`citygate-agent run --config CONFIG` processes, one after the other. Each is started ahead of
    need and imports its modules while those before it run, then starts its console script when
    asked (tests/powercut/standby_agent.py): 20 restarts cost 20 journal opens, not 20 imports.
    Two stand by, as an import (1-2 s on a loaded machine) outlasts a cycle of this test."""

    AHEAD = 2

    def __init__(self, config: Path) -> None:
        self.argv = [sys.executable, str(STANDBY), bin_path("citygate-agent"), "run", "--config", str(config)]
        self.standby: deque[Proc] = deque()

    def __enter__(self) -> Agents:
        self.standby.extend(Proc("agent", self.argv, die_with_parent=True) for _ in range(self.AHEAD))
        return self

    def __exit__(self, *exc: object) -> None:
        while self.standby:
            self.standby.popleft().kill9()

    @contextmanager
    def running(self) -> Iterator[Proc]:
        agent = self.standby.popleft()
        self.standby.append(Proc("agent", self.argv, die_with_parent=True))
        try:
            agent.wait_for("standby agent ready", timeout=60)
            agent.popen.send_signal(signal.SIGUSR2)
            yield agent
        finally:
            if agent.popen.poll() is None:  # the test failed with the agent up; it dies when the mount does
                agent.popen.kill()


@dataclass(frozen=True)
class Moment:
    """When the power goes. With `ops`, at an exact point of the filesystem's write stream: right
    after the `ops`-th write, sync or name change counted from the agent's spawn if `starting`
    (opening its journal, perhaps), else from `after_s` s after it started. Without, `after_s` s
    after it started, wherever the agent is then."""

    after_s: float
    ops: int = 0
    starting: bool = False


def moment_of(cut: int, rng: random.Random) -> Moment:
    if cut % 5 == 0:
        return Moment(0.0, rng.randint(1, 60), starting=True)
    if cut % 2:
        return Moment(rng.uniform(0.05, 0.3), rng.randint(1, 30))
    return Moment(rng.uniform(0.05, 0.6))


def run_until_cut(agents: Agents, watch: Watch, fs: LazyMount, moment: Moment, cut: tuple[str, int],
                  committed: int) -> tuple[int | None, str]:
    """Run the agent until `moment`, then cut the power: the highest seq seen committed, and the
    filesystem's report of the cut. Unless the cut falls while it starts, the agent first commits a
    record after `committed`, whatever its journal's batching, so every life adds to the journal."""
    if moment.starting:
        fs.freeze_after(moment.ops)
    with agents.running() as agent:
        seen = None
        if not moment.starting:
            agent.wait_for("agent .* started", timeout=60)
            seen = watch.committed(moment.after_s, beyond=committed)  # mid-poll, mid-commit, mid-upload
        if moment.ops:
            if not moment.starting:
                fs.freeze_after(moment.ops)
            fs.wait_frozen(timeout=10)  # a writer gone quiet: the cut falls then
        # SIGKILL first: the agent runs no more code. A thread of it may wait on the frozen filesystem
        # until the cut ends it, which cannot let it write either
        agent.popen.kill()
        report = fs.cut(*cut)
        agent.popen.wait(10)
    assert_journal_quiet(agent)
    return seen, report


def assert_store_holds_each_once(db: Path, ledger: Ledger) -> None:
    seqs = stored_seqs(db, GW)
    assert len(seqs) > 10 * CUTS, (
        f"the agent should have polled and uploaded between cuts; it numbered {ledger.numbered} records")
    assert len(seqs) == len(set(seqs)), "the collector stored some records twice"
    assert seqs == list(range(ledger.first_seq or 0, seqs[-1] + 1)), "the collector's seqs have gaps"
    never = sorted(set(ledger.promised) - set(seqs))
    assert not never, f"{len(never)} records a recovered journal held never reached the collector: {never[:5]}"
    samples = stored_samples(db, GW)
    for seq, (kind, device, ts_ms) in ledger.promised.items():
        if kind == "sample":
            assert samples[seq][:2] == (device, ts_ms), f"seq {seq}: stored {samples[seq][:2]}, journal had {device}"


def test_twenty_power_cuts_while_polling_and_uploading_lose_nothing_committed(tmp_path: Path) -> None:
    fuse_available()
    rng = random.Random(20261203)
    ledger = Ledger()
    reports = []
    with street(tmp_path) as (db, url, token_file, sim_port), LazyMount(tmp_path / "fs") as fs:
        state = fs.mountpoint / "state"
        polling = tmp_path / "polling.toml"
        polling.write_text(agent_config(state, url, token_file, sim_port))
        watch = Watch(AgentClient(state / "agent.sock"), db)
        with Agents(polling) as agents:
            for cut in range(1, CUTS + 1):
                # the unsynced pages are all lost, or all but a torn last page, or half of them reach
                # the disk in no order and the last is torn (tests/powercut/lazyfs.py)
                seen, report = run_until_cut(agents, watch, fs, moment_of(cut, rng),
                                             (CUT_MODES[cut % 3], rng.randrange(1 << 30)), max(ledger.next_seq - 1, 0))
                reports.append(report)
                rec = recover(fs.backing / "state", tmp_path / "recovered", url, token_file)
                ledger.after_cut(cut, rec, stored_seqs(db, GW), seen)
                fs.mount()
            upload_the_rest(agents, db, ledger.next_seq - 1)
    # the cuts must often fall mid-commit (unsynced journal pages dropped), or they prove little
    mid_commit = [r for r in reports if re.search(r"journal\.db(-wal)?:", r)]
    assert len(mid_commit) >= 3, "too few cuts fell mid-commit:\n" + "\n".join(reports)
    print(f"\n{len(mid_commit)} of {CUTS} cuts dropped unsynced journal pages:\n" + "\n".join(reports))
    print(f"records numbered between cuts: {ledger.numbered}")
    lives = sum(1 for n in ledger.numbered if n > 0)
    assert lives >= CUTS // 2, f"too few of the agent's lives committed records: {ledger.numbered}"
    assert_store_holds_each_once(db, ledger)
