"""The power-cut filesystem itself: what a cut keeps (what was fsync'ed, and namespace operations),
what it loses (every unsynced write and truncate), what a torn page and a scattered writeback
look like, and how a freeze stops a writer at an exact operation."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.powercut.lazyfs import PAGE, SECTOR
from tests.powercut.powercut_kit import LazyMount, fuse_available, is_mounted


@pytest.fixture(scope="module")
def mount(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LazyMount]:
    fuse_available()
    with LazyMount(tmp_path_factory.mktemp("lazyfs")) as lazy:
        yield lazy
    assert not is_mounted(lazy.mountpoint)


@pytest.fixture
def fs(mount: LazyMount) -> LazyMount:
    """One mount for the module (a mount costs a process start); a test that failed between a cut
    and its remount leaves it unmounted."""
    if mount.server is None:
        mount.mount()
    return mount


@pytest.fixture
def here(fs: LazyMount, request: pytest.FixtureRequest) -> Path:
    """A folder of the mount for this test alone."""
    folder = fs.mountpoint / re.sub(r"\W", "_", request.node.name)
    folder.mkdir()
    return folder


def write(path: Path, data: bytes, *, offset: int = 0, sync: bool = False, datasync: bool = False) -> None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        os.pwrite(fd, data, offset)
        if sync:
            os.fsync(fd)
        if datasync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def test_unsynced_writes_are_read_back_until_the_cut_and_lost_by_it(fs: LazyMount, here: Path) -> None:
    synced, unsynced, datasynced = (here / name for name in ("synced", "unsynced", "datasynced"))
    write(synced, b"kept" * 3000, sync=True)
    write(synced, b"lost", offset=100)
    write(unsynced, b"never synced")
    write(datasynced, b"fdatasync counts", datasync=True)
    assert synced.read_bytes()[96:108] == b"keptlostkept"
    assert unsynced.read_bytes() == b"never synced"
    assert fs.command("stats").startswith("ok files=2 pages=2 ")

    fs.cut()
    assert not is_mounted(fs.mountpoint)
    fs.mount()
    assert synced.read_bytes() == b"kept" * 3000
    assert unsynced.read_bytes() == b""  # created (the name is durable), its data never reached the disk
    assert datasynced.read_bytes() == b"fdatasync counts"


def test_unsynced_truncate_and_extension_are_lost_synced_ones_kept(fs: LazyMount, here: Path) -> None:
    path = here / "f"
    write(path, b"a" * (3 * PAGE), sync=True)
    os.truncate(path, PAGE + 10)
    write(path, b"b" * 10, offset=5 * PAGE)
    assert path.read_bytes() == b"a" * (PAGE + 10) + bytes(4 * PAGE - 10) + b"b" * 10
    fs.cut()
    fs.mount()
    assert path.read_bytes() == b"a" * (3 * PAGE)

    os.truncate(path, 10)
    write(path, b"c", offset=20, sync=True)
    fs.remount()
    assert path.read_bytes() == b"a" * 10 + bytes(10) + b"c"


def test_a_torn_page_keeps_a_sector_prefix_of_the_last_write(fs: LazyMount, here: Path) -> None:
    path = here / "f"
    write(path, b"o" * (2 * PAGE), sync=True)
    write(path, b"x" * PAGE)  # the first page, then the second: the second is torn
    write(path, b"n" * PAGE, offset=PAGE)
    assert fs.cut("tear", 7) == f"ok cut files=1 kept=0 torn=1 unsynced=/{here.name}/f:2"
    fs.mount()
    data = path.read_bytes()
    assert data[:PAGE] == b"o" * PAGE  # an earlier unsynced page: lost whole
    second = data[PAGE:]
    kept = len(second) - len(second.lstrip(b"n"))
    assert 0 < kept < PAGE and kept % SECTOR == 0, f"{kept} bytes of the last page reached the disk"
    assert second == b"n" * kept + b"o" * (PAGE - kept)


def test_a_tear_of_different_seeds_keeps_different_prefixes(fs: LazyMount, here: Path) -> None:
    path = here / "f"
    kept = set()
    for seed in range(4):
        write(path, b"o" * PAGE, sync=True)
        write(path, b"n" * PAGE)
        fs.cut("tear", seed)
        fs.mount()
        kept.add(path.read_bytes().count(b"n"))
    assert len(kept) > 1 and all(0 < k < PAGE for k in kept)


def test_a_scatter_keeps_some_unsynced_pages_whole_in_no_order(fs: LazyMount, here: Path) -> None:
    pages = 64
    path = here / "f"
    write(path, bytes(pages * PAGE), sync=True)
    for i in range(pages):
        write(path, bytes([i + 1]) * PAGE, offset=i * PAGE)
    report = fs.cut("scatter", 3)
    fs.mount()
    data = path.read_bytes()
    new = [i for i in range(pages - 1) if data[i * PAGE:(i + 1) * PAGE] == bytes([i + 1]) * PAGE]
    old = [i for i in range(pages - 1) if data[i * PAGE:(i + 1) * PAGE] == bytes(PAGE)]
    assert sorted(new + old) == list(range(pages - 1)), "a page other than the last was torn"
    assert 10 < len(new) < pages - 10, report
    last = data[(pages - 1) * PAGE:]
    written = len(last) - len(last.lstrip(bytes([pages])))
    assert written == PAGE or (0 < written < PAGE and written % SECTOR == 0)


def test_namespace_operations_are_durable_at_once(fs: LazyMount, here: Path) -> None:
    (here / "dir").mkdir()
    write(here / "dir" / "a", b"synced", sync=True)
    os.rename(here / "dir" / "a", here / "dir" / "b")
    write(here / "gone", b"x", sync=True)
    os.unlink(here / "gone")
    fs.cut()
    fs.mount()
    assert sorted(os.listdir(here)) == ["dir"]
    assert (here / "dir" / "b").read_bytes() == b"synced"


WRITER = """
import os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for byte in (b"b", b"c"):
    os.pwrite(fd, byte, os.fstat(fd).st_size)
    os.fsync(fd)
"""


@pytest.mark.parametrize(("operations", "after_cut"), [(1, b"a"), (2, b"ab"), (3, b"ab"), (4, b"abc")])
def test_a_freeze_stops_the_writer_at_an_exact_operation(
        fs: LazyMount, here: Path, operations: int, after_cut: bytes) -> None:
    """write b, fsync, write c, fsync: frozen after the Nth, the cut keeps what was synced by then."""
    path = here / "f"
    write(path, b"a", sync=True)
    fs.freeze_after(operations)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)])
    try:
        assert fs.wait_frozen(timeout=30)
        time.sleep(0.2)
        assert writer.poll() is None, "the writer went on past the frozen operation"
    finally:
        writer.kill()
    fs.cut()
    writer.wait(10)
    fs.mount()
    assert path.read_bytes() == after_cut


@pytest.mark.parametrize(("synchronous", "rows_after_cut"), [("FULL", 50), ("OFF", 0)])
def test_sqlite_in_wal_mode_keeps_its_commits_only_if_it_syncs_them(
        fs: LazyMount, here: Path, synchronous: str, rows_after_cut: int) -> None:
    """The filesystem is sharp enough to tell a synced journal from an unsynced one."""
    db = sqlite3.connect(here / "j.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    db.execute("CREATE TABLE IF NOT EXISTS t (x BLOB)")
    for _ in range(50):
        db.execute("INSERT INTO t VALUES (?)", (b"r" * 300,))
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (50,)
    fs.cut("scatter", 1)
    db.close()
    fs.mount()
    db = sqlite3.connect(here / "j.db")
    try:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        rows = db.execute("SELECT COUNT(*) FROM t").fetchone()[0] if "t" in tables else 0
    finally:
        db.close()
    assert rows == rows_after_cut
