"""Flash wear: bytes written to the disk per journalled record, against raw sqlite3 inserts of the same records.

Each run is a child process whose /proc/self/io `write_bytes` (what the process sent, or dirtied
for, the block layer: WAL frames, checkpoints, the database file, fsync'd) is read before and
after: the figure is that delta over the records journalled while the journal runs, the WAL
checkpointed at the end (what a cabinet that runs for months writes: every frame is copied
into the database file once; opening and closing are given beside it). Two loads:
- `200x1Hz`: 200 lamp controllers read once a second, one after another over the second;
- `cabinet`: the shipped cabinet settings: 23 lamps read every 5 s (`interval_s = 5.0` in
  configs/gateways/*.toml), one after another at `--read-ms` a lamp.
Each sample is the LC100 map's 11 quantities (configs/registermaps/lamp-lc100.toml), as the
modbus driver emits them. Uploads acknowledge as in the agent: the uploader's cadence (wait for
new data up to `interval_s` = 2 s, then 0.5 s to gather a burst, read a batch, the collector
acknowledges it at once, ack); no HTTP, which writes nothing to the disk. Time runs `--speed`
times faster than the wall clock for every delay alike (reads, the journal's commit window, the
uploader's waits; the journal's pause detection no shorter than IDLE_FLOOR_S), so the commits
group the same records as they would in the field: the output gives the number of commits.

Baseline, same run, same disk: raw sqlite3 inserts of the same records' wire bodies, one
transaction a poll cycle (the grouping a bus gives for free), WAL, synchronous=FULL, no deletes.

    python bench/bench_flash.py [--minutes-200 2] [--minutes-cabinet 30] [--before REV]

`--before REV` runs the journal of git revision REV in the same run too (before/after figures).
The last lines project the life of an 8 GB eMMC rated 3,000 P/E cycles at the cabinet figure.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import inspect
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import orjson

REPO = Path(__file__).resolve().parent.parent
TS = 1_764_000_000_000
UPLINK_INTERVAL_S = 2.0
GATHER_S = 0.5
#: the shortest pause the journal waits for (its idle_s, scaled): a poll cycle's reads stay closer
#: together and cycles farther apart, as in the field, whatever the speed
IDLE_FLOOR_S = 0.02
EMMC_BYTES = 8 * 10**9
PE_CYCLES = 3000


@dataclass(frozen=True)
class Load:
    name: str
    lamps: int
    interval_s: float
    read_ms: float
    minutes: float
    speed: float


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise RuntimeError("no write_bytes in /proc/self/io")


def lamp_values(unit: int, cycle: int) -> dict[str, Any]:
    """An LC100 reading as the modbus driver emits it (11 quantities)."""
    return {"level_cmd_pct": 70, "level_pct": 70, "lamp_on": True, "fault_bits": 0, "lamp_failure": False,
            "voltage_v": round(229.0 + (unit * 7 + cycle) % 40 * 0.1, 1), "current_a": round(0.25 + unit % 9 * 0.01, 2),
            "power_w": round(58.0 + (unit + cycle) % 30 * 0.1, 1), "temperature_c": round(24.0 + unit % 15 * 0.5, 1),
            "energy_wh": 1_250_000 + unit * 1000 + cycle * 17, "operating_hours_h": 21_000 + unit + cycle // 720}


def wire_body(device: str, ts_ms: int, values: dict[str, Any]) -> bytes:
    return orjson.dumps({"kind": "sample", "device": device, "ts_ms": ts_ms, "values": values})


def load_journal(path: str | None) -> ModuleType:
    if path is None:
        import edge_agent.journal as current
        return current
    spec = importlib.util.spec_from_file_location("journal_before", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["journal_before"] = module
    spec.loader.exec_module(module)
    return module


async def poll(load: Load, emit: Any) -> int:
    """Emit the load's samples at its pace (scaled by its speed); the number emitted."""
    from drivers.model import Sample
    cycles = int(load.minutes * 60 / load.interval_s)
    start = time.monotonic()
    n = 0
    for cycle in range(cycles):
        t_cycle = start + cycle * load.interval_s / load.speed
        for unit in range(load.lamps):
            delay = t_cycle + unit * load.read_ms / 1000 / load.speed - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            emit(Sample(f"lamp-{unit + 1:03d}", TS + int(cycle * load.interval_s * 1000) + unit, lamp_values(unit, cycle)))
            n += 1
    return n


async def upload(journal: Any, speed: float, stop: asyncio.Event) -> int:
    """The uploader's calls on the journal, at its cadence; the collector acknowledges every batch."""
    acked = 0
    while not stop.is_set() or journal.backlog:
        batch = await journal.read_pending(5000, 2_000_000) if journal.backlog else None
        if batch is not None:
            await journal.ack(batch.last_seq)
            acked += len(batch.records)
            continue
        journal.new_data.clear()
        try:
            async with asyncio.timeout(UPLINK_INTERVAL_S / speed):
                await journal.new_data.wait()
        except TimeoutError:
            continue
        await asyncio.sleep(GATHER_S / speed)
    return acked


async def run_journal(load: Load, db: Path, module: ModuleType) -> dict[str, Any]:
    params = inspect.signature(module.Journal).parameters
    timing = {"flush_interval_s": params["flush_interval_s"].default / load.speed}
    if "idle_s" in params:  # scaled too, but kept above a loaded machine's scheduling jitter
        timing["idle_s"] = max(params["idle_s"].default / load.speed, IDLE_FLOOR_S)
    commits = 0
    write = module.Journal._write

    def counting(self: Any, rows: list[Any]) -> None:
        nonlocal commits
        write(self, rows)
        commits += 1

    module.Journal._write = counting
    before = write_bytes()
    async with module.Journal(db, **timing) as journal:
        opened = write_bytes()
        stop = asyncio.Event()
        uploader = asyncio.create_task(upload(journal, load.speed, stop))
        n = await poll(load, journal.append)
        await journal.flush()
        stop.set()
        acked = await uploader
        checkpoint(db)  # what the run wrote to the WAL reaches the database file, as it would later
        running = write_bytes() - opened
    return {"records": n, "acked": acked, "write_bytes": write_bytes() - before, "running": running,
            "commits": commits}


def checkpoint(db: Path) -> None:
    con = sqlite3.connect(db)
    try:
        con.execute("PRAGMA wal_checkpoint(PASSIVE)")
    finally:
        con.close()


def run_raw(load: Load, db: Path) -> dict[str, Any]:
    """The same records' wire bodies, one transaction a poll cycle, as fast as the disk goes."""
    cycles = int(load.minutes * 60 / load.interval_s)
    before = write_bytes()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE journal (seq INTEGER PRIMARY KEY, body BLOB NOT NULL)")
    n = 0
    for cycle in range(cycles):
        rows = [(wire_body(f"lamp-{unit + 1:03d}", TS + int(cycle * load.interval_s * 1000) + unit,
                           lamp_values(unit, cycle)),) for unit in range(load.lamps)]
        con.execute("BEGIN")
        con.executemany("INSERT INTO journal(body) VALUES (?)", rows)
        con.execute("COMMIT")
        n += len(rows)
    con.close()
    written = write_bytes() - before
    return {"records": n, "acked": 0, "write_bytes": written, "running": written, "commits": cycles}


def body_bytes(load: Load) -> float:
    """Mean size of the wire body (the JSON record without its seq) of the load's samples."""
    sizes = [len(wire_body(f"lamp-{u + 1:03d}", TS, lamp_values(u, 0))) for u in range(load.lamps)]
    return sum(sizes) / len(sizes)


def child(args: argparse.Namespace) -> None:
    load = Load(**json.loads(args.child))
    with tempfile.TemporaryDirectory(dir=REPO) as tmp:
        db = Path(tmp) / "journal.db"
        if args.variant == "raw":
            out = run_raw(load, db)
        else:
            out = asyncio.run(run_journal(load, db, load_journal(args.journal_file)))
        out["db_bytes"] = sum(p.stat().st_size for p in Path(tmp).iterdir())
    print(json.dumps(out))


def measure(load: Load, variant: str, journal_file: str | None = None) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", json.dumps(load.__dict__), "--variant", variant]
    if journal_file:
        cmd += ["--journal-file", journal_file]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - t0
    return result


def life_years(bytes_per_record: float, records_per_day: float, amplification: float) -> float:
    return EMMC_BYTES * PE_CYCLES / (bytes_per_record * records_per_day * amplification) / 365.25


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes-200", type=float, default=2.0, help="simulated minutes of the 200-lamp load")
    ap.add_argument("--minutes-cabinet", type=float, default=30.0, help="simulated minutes of the cabinet load")
    ap.add_argument("--speed-200", type=float, default=2.0)
    ap.add_argument("--speed-cabinet", type=float, default=20.0)
    ap.add_argument("--read-ms", type=float, default=20.0, help="time to read one lamp on the cabinet bus")
    ap.add_argument("--before", help="git revision whose edge_agent/journal.py to measure too")
    ap.add_argument("--waf", type=float, default=4.0, help="eMMC write amplification assumed for the life figure")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--journal-file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    loads = [Load("200x1Hz", 200, 1.0, 4.0, args.minutes_200, args.speed_200),
             Load("cabinet", 23, 5.0, args.read_ms, args.minutes_cabinet, args.speed_cabinet)]
    with tempfile.TemporaryDirectory() as tmp:
        before_file = None
        if args.before:
            before_file = str(Path(tmp) / "journal_before.py")
            source = subprocess.run(["git", "show", f"{args.before}:edge_agent/journal.py"], check=True,
                                    capture_output=True, cwd=REPO).stdout
            Path(before_file).write_bytes(source)
        per_record: dict[str, float] = {}
        for load in loads:
            body = body_bytes(load)
            print(f"{load.name}: {load.lamps} lamps every {load.interval_s:g} s, {load.minutes:g} simulated min"
                  f" at x{load.speed:g}, wire body {body:.0f} B/record")
            raw = measure(load, "raw")
            raw_per = raw["write_bytes"] / raw["records"]
            print(f"  raw sqlite3 inserts (baseline) : {raw_per:8.0f} B/record  {raw_per / body:5.2f}x body"
                  f"  ({raw['records']} records, {raw['commits']} commits)")
            runs: list[tuple[str, str | None]] = [("journal (this tree)", None)]
            if before_file:
                runs.insert(0, (f"journal ({args.before})", before_file))
            for label, path in runs:
                r = measure(load, "journal", path)
                per = r["running"] / r["records"]
                per_record[f"{load.name} {label}"] = per
                verdict = "met" if per <= 2 * body else "NOT met"
                print(f"  {label:<30.30} : {per:8.0f} B/record  {per / body:5.2f}x body  ratio {per / raw_per:5.2f}"
                      f" to baseline  (target <= 2x body: {verdict})")
                print(f"  {'':<30} ({r['records']} records, {r['commits']} commits, {r['acked']} acked;"
                      f" {r['write_bytes'] / r['records']:.0f} B/record with opening and closing)")
        cabinet = loads[1]
        per_day = cabinet.lamps * 86400 / cabinet.interval_s
        for label, per in per_record.items():
            if label.startswith("cabinet"):
                gb_day = per * per_day / 1e9
                print(f"life of an 8 GB eMMC, 3000 P/E, write amplification x{args.waf:g}, {label}:"
                      f" {gb_day * 1000:.1f} MB/day -> {life_years(per, per_day, args.waf):,.0f} years")


if __name__ == "__main__":
    main()
