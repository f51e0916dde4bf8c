"""Shared by the end-to-end tests: what the collector's SQLite store holds for a gateway."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import orjson


def stored_seqs(db: Path, gateway: str) -> list[int]:
    """Every seq the collector stored for `gateway` (samples and events), sorted; duplicates kept."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        gid = con.execute("SELECT id FROM gateways WHERE name=?", (gateway,)).fetchone()[0]
        rows = con.execute(
            "SELECT seq FROM samples WHERE gateway_id=? UNION ALL SELECT seq FROM events WHERE gateway_id=? "
            "AND seq IS NOT NULL", (gid, gid),
        ).fetchall()
    finally:
        con.close()
    return sorted(r[0] for r in rows)


def stored_samples(db: Path, gateway: str) -> dict[int, tuple[str, int, dict[str, object]]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        gid = con.execute("SELECT id FROM gateways WHERE name=?", (gateway,)).fetchone()[0]
        rows = con.execute("SELECT seq, device, ts_ms, vals FROM samples WHERE gateway_id=?", (gid,))
        return {seq: (device, ts, orjson.loads(values)) for seq, device, ts, values in rows}
    finally:
        con.close()


def wait_until(cond: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(step)
