"""A FUSE filesystem that forgets what was not synced, in the manner of LazyFS (the one Jepsen uses).

    python tests/powercut/lazyfs.py BACKING MOUNTPOINT CONTROL_NAME

Everything passes through to the BACKING folder (the "disk"), except file contents: a write goes
to a page cache kept in this process's memory and reaches BACKING only when the file is
fsync'ed or fdatasync'ed. A power cut, asked for on the control socket, throws that cache away and
ends the process at once, so BACKING holds exactly what a disk would after the cut. The control
socket is the abstract Unix socket named CONTROL_NAME.

What is modelled, precisely:
- file data and file size (writes, truncates, O_TRUNC) are volatile until `fsync`/`fdatasync` of
  that file; reads see them (read-your-writes) until the cut;
- namespace operations (create, mknod, mkdir, unlink, rmdir, rename) and attributes (mode, times) are
  durable at once, as on a filesystem that journals its metadata synchronously (ext4 with
  `dirsync`): a file created and never synced survives the cut empty. SQLite syncs the file
  data it relies on; with WAL it also syncs the folder after creating the -wal, which this
  model grants in advance;
- `cut tear SEED`: in each file with unsynced writes, a prefix of its most recently written
  page (a random whole number of 512-byte sectors, not all of them) reaches the disk too, as
  if the power failed in the middle of writing that page;
- `cut scatter SEED`: each unsynced page reaches the disk whole with odds 1/2, in no order (the
  kernel's writeback flushes dirty pages when it likes), and the last written page of each file,
  if not, torn as above. Pages, not writes, are the unit: a page holds the latest bytes written
  to it.

Control protocol, one line in, one line out:
- the process starts standing by; `mount` -> `ok mounting`, then it prints `lazyfs mounted`;
- `cut`, `cut tear SEED` or `cut scatter SEED` -> `ok cut files=N kept=K torn=T
  unsynced=PATH:PAGES,...` (files with unsynced data, pages kept whole, pages torn, unsynced pages
  per file), and the process exits with the mount dead (unmount it with `fusermount3 -u`);
- `freeze N` -> `ok freeze at OPS`: the Nth operation from now that changes the disk or the cache
  (write, truncate, fsync, create, mknod, mkdir, unlink, rmdir, rename) is applied, never answered,
  and stops the filesystem: it prints `lazyfs frozen ...` and waits for the cut. The test kills
  the writer, then cuts: the power failed at that exact point of the write stream;
- `stats` -> `ok files=N pages=P ops=OPS`: files and pages now unsynced, operations so far.
"""

from __future__ import annotations

import ctypes
import errno
import os
import random
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mfusepy

PAGE = 4096
SECTOR = 512
FROZEN_MAX_S = 120
CUTS = ("drop", "tear", "scatter")
PR_SET_PDEATHSIG = 1


@dataclass
class Volatile:
    """A file's unsynced state: its size and the pages written since its last sync."""

    size: int
    # bytes at or above `floor` come from `pages` or read as zeros, never from the disk: the file
    # was truncated below the disk's size since the last sync
    floor: int
    pages: dict[int, bytearray] = field(default_factory=dict)
    last_page: int | None = None


class LazyFS(mfusepy.Operations):
    use_ns = True

    def __init__(self, backing: Path) -> None:
        self.backing = backing
        self.mutex = threading.Lock()  # the control thread's cut against the FUSE loop's operations
        self.volatile: dict[str, Volatile] = {}
        self.lost: dict[str, int] = {}  # at the cut: path -> unsynced pages dropped
        self.ops = 0  # operations that change the disk or the cache: writes, truncates, syncs, names
        self.freeze_at: int | None = None

    def _real(self, path: str) -> str:
        return str(self.backing) + path

    # -- the volatile page cache -------------------------------------------------------------

    def _state(self, path: str) -> Volatile:
        state = self.volatile.get(path)
        if state is None:
            size = os.stat(self._real(path)).st_size
            state = self.volatile[path] = Volatile(size=size, floor=size)
        return state

    def _disk_page(self, path: str, index: int, floor: int) -> bytearray:
        start = index * PAGE
        page = bytearray(PAGE)
        if start < floor:
            with open(self._real(path), "rb") as f:
                f.seek(start)
                data = f.read(min(PAGE, floor - start))
            page[: len(data)] = data
        return page

    def _page(self, path: str, state: Volatile, index: int) -> bytearray:
        page = state.pages.get(index)
        if page is None:
            page = state.pages[index] = self._disk_page(path, index, state.floor)
        return page

    def _write(self, path: str, data: bytes, offset: int) -> None:
        state = self._state(path)
        end = offset + len(data)
        pos = offset
        while pos < end:
            index, within = divmod(pos, PAGE)
            n = min(PAGE - within, end - pos)
            self._page(path, state, index)[within : within + n] = data[pos - offset : pos - offset + n]
            state.last_page = index
            pos += n
        state.size = max(state.size, end)

    def _truncate(self, path: str, length: int) -> None:
        state = self._state(path)
        if length < state.size:
            for index in [i for i in state.pages if i * PAGE >= length]:
                del state.pages[index]
            index, within = divmod(length, PAGE)
            if within and index in state.pages:
                state.pages[index][within:] = bytes(PAGE - within)
            state.floor = min(state.floor, length)
            if state.last_page is not None and state.last_page not in state.pages:
                state.last_page = None
        state.size = length

    def _read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        state = self.volatile.get(path)
        if state is None:
            return os.pread(fh, size, offset)
        end = min(offset + size, state.size)
        out = bytearray()
        pos = offset
        while pos < end:
            index, within = divmod(pos, PAGE)
            n = min(PAGE - within, end - pos)
            page = state.pages.get(index)
            if page is None:
                page = self._disk_page(path, index, state.floor)
            out += page[within : within + n]
            pos += n
        return bytes(out)

    def _sync(self, path: str) -> None:
        state = self.volatile.pop(path, None)
        if state is None:
            return
        fd = os.open(self._real(path), os.O_WRONLY)
        try:
            os.ftruncate(fd, state.floor)
            for index, page in sorted(state.pages.items()):
                start = index * PAGE
                if start < state.size:
                    os.pwrite(fd, page[: min(PAGE, state.size - start)], start)
            os.ftruncate(fd, state.size)
        finally:
            os.close(fd)

    def cut(self, mode: str, seed: int) -> tuple[int, int, int]:
        """The power fails: each file's unsynced pages are lost, except that with `tear` a sector
        prefix of its last written page reaches the disk, and with `scatter` each page does with
        odds 1/2 (whole; the last one torn if not), as the kernel's writeback may have flushed any
        of them in any order. (files with unsynced data, whole pages kept, pages torn)"""
        rng = random.Random(seed)
        kept = torn = 0
        self.lost = {path: len(state.pages) for path, state in self.volatile.items()}
        for path, state in sorted(self.volatile.items()):
            if mode == "drop" or not os.path.exists(self._real(path)):
                continue
            whole = [i for i in sorted(state.pages) if mode == "scatter" and rng.random() < 0.5]
            for index in whole:
                kept += self._persist(path, state, index, PAGE)
            if state.last_page is not None and state.last_page not in whole:
                torn += self._persist(path, state, state.last_page, rng.randrange(1, PAGE // SECTOR) * SECTOR)
        files = len(self.volatile)
        self.volatile.clear()
        return files, kept, torn

    def _persist(self, path: str, state: Volatile, index: int, length: int) -> int:
        """Write the first `length` bytes of a cached page (no further than the file's end) to the disk."""
        start = index * PAGE
        length = min(length, state.size - start)
        if length <= 0:
            return 0
        fd = os.open(self._real(path), os.O_WRONLY)
        try:
            os.pwrite(fd, state.pages[index][:length], start)
        finally:
            os.close(fd)
        return 1

    def stats(self) -> tuple[int, int]:
        return len(self.volatile), sum(len(s.pages) for s in self.volatile.values())

    def _done(self) -> None:
        """Count an operation; the one a `freeze` asked for is applied but never answered, and nothing
        after it runs: the power went off there (the cut that follows drops what was unsynced)."""
        with self.mutex:
            self.ops += 1
            frozen = self.ops == self.freeze_at
        if frozen:
            print(f"lazyfs frozen after operation {self.ops}", flush=True)
            # the one FUSE thread waits for the cut, which ends the process; a test that never cuts
            # (it failed first) does not leave a writer stuck on this mount for ever
            threading.Event().wait(FROZEN_MAX_S)
            os._exit(3)

    # -- FUSE operations ---------------------------------------------------------------------

    def init(self, path: str) -> None:
        print("lazyfs mounted", flush=True)

    def getattr(self, path: str, fh: int | None = None) -> dict[str, Any]:
        with self.mutex:
            st = os.lstat(self._real(path))
            attrs = {key: getattr(st, key) for key in (
                "st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_ino", "st_blocks")}
            attrs.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
            state = self.volatile.get(path)
            if state is not None:
                attrs["st_size"] = state.size
                attrs["st_blocks"] = (state.size + 511) // 512
            return attrs

    def readdir(self, path: str, fh: int) -> list[str]:
        return [".", "..", *os.listdir(self._real(path))]

    def access(self, path: str, amode: int) -> int:
        if not os.access(self._real(path), amode):
            raise mfusepy.FuseOSError(errno.EACCES)
        return 0

    def mkdir(self, path: str, mode: int) -> int:
        os.mkdir(self._real(path), mode)
        self._done()
        return 0

    def mknod(self, path: str, mode: int, dev: int) -> int:
        os.mknod(self._real(path), mode, dev)  # the agent's Unix socket
        self._done()
        return 0

    def rmdir(self, path: str) -> int:
        os.rmdir(self._real(path))
        self._done()
        return 0

    def unlink(self, path: str) -> int:
        with self.mutex:
            os.unlink(self._real(path))
            self.volatile.pop(path, None)
        self._done()
        return 0

    def rename(self, old: str, new: str) -> int:
        with self.mutex:
            os.rename(self._real(old), self._real(new))
            self.volatile.pop(new, None)
            state = self.volatile.pop(old, None)
            if state is not None:
                self.volatile[new] = state
        self._done()
        return 0

    def chmod(self, path: str, mode: int) -> int:
        os.chmod(self._real(path), mode)
        return 0

    def chown(self, path: str, uid: int, gid: int) -> int:
        os.chown(self._real(path), uid, gid)
        return 0

    def utimens(self, path: str, times: tuple[int, int] | None = None) -> int:
        if times is None:
            os.utime(self._real(path))
        else:
            os.utime(self._real(path), ns=times)
        return 0

    def statfs(self, path: str) -> dict[str, int]:
        sv = os.statvfs(self._real(path))
        return {key: getattr(sv, key) for key in (
            "f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag",
            "f_frsize", "f_namemax")}

    def _open_backing(self, path: str, flags: int, mode: int = 0o644) -> int:
        # the backing descriptor only reads: writes go to the page cache
        keep = flags & os.O_CREAT
        try:
            return os.open(self._real(path), os.O_RDWR | keep, mode)
        except PermissionError:
            return os.open(self._real(path), os.O_RDONLY | keep, mode)

    def create(self, path: str, mode: int, fi: int | None = None) -> int:
        with self.mutex:
            fd = self._open_backing(path, os.O_CREAT, mode)
            if fi is not None and fi & os.O_TRUNC:
                self._truncate(path, 0)
        self._done()
        return fd

    def open(self, path: str, flags: int) -> int:
        with self.mutex:
            fd = self._open_backing(path, flags)
            if flags & os.O_TRUNC:
                self._truncate(path, 0)
            return fd

    def read(self, path: str, size: int, offset: int, fh: int) -> bytes:
        with self.mutex:
            return self._read(path, size, offset, fh)

    def write(self, path: str, data: bytes, offset: int, fh: int) -> int:
        with self.mutex:
            self._write(path, data, offset)
        self._done()
        return len(data)

    def truncate(self, path: str, length: int, fh: int | None = None) -> int:
        with self.mutex:
            self._truncate(path, length)
        self._done()
        return 0

    def fsync(self, path: str, datasync: int, fh: int) -> int:
        with self.mutex:
            self._sync(path)
        self._done()
        return 0

    def fsyncdir(self, path: str, datasync: int, fh: int) -> int:
        return 0  # namespace operations are durable at once (see the module's docstring)

    def flush(self, path: str, fh: int) -> int:
        return 0

    def release(self, path: str, fh: int) -> int:
        os.close(fh)
        return 0


def serve_control(fs: LazyFS, sock: socket.socket, go: threading.Event) -> None:
    """Answer control commands; a cut answers, then ends the process with nothing more written."""
    while True:
        conn, _ = sock.accept()
        with conn, conn.makefile("rwb") as f:
            words = f.readline().decode().split()
            with fs.mutex:
                if words == ["mount"]:
                    go.set()
                    f.write(b"ok mounting\n")
                elif words[:1] == ["cut"] and (words[1:] == [] or (len(words) == 3 and words[1] in CUTS)):
                    files, kept, torn = fs.cut(words[1], int(words[2])) if words[1:] else fs.cut("drop", 0)
                    lost = ",".join(f"{path}:{pages}" for path, pages in sorted(fs.lost.items()))
                    f.write(f"ok cut files={files} kept={kept} torn={torn} unsynced={lost}\n".encode())
                    f.flush()
                    os._exit(0)  # the power is off: the lock stays held, no operation runs again
                elif words == ["stats"]:
                    files, pages = fs.stats()
                    f.write(f"ok files={files} pages={pages} ops={fs.ops}\n".encode())
                elif words[:1] == ["freeze"] and len(words) == 2 and words[1].isdigit():
                    fs.freeze_at = fs.ops + int(words[1])
                    f.write(f"ok freeze at {fs.freeze_at}\n".encode())
                else:
                    f.write(f"error unknown command {' '.join(words)!r}\n".encode())


def main(argv: list[str]) -> None:
    backing, mountpoint, control = argv
    # the test that started us dies (however): so do we, even frozen or in libfuse's loop, which
    # takes SIGTERM for itself; the dead connection fails whatever waits on the mount, and
    # fusermount3 (auto_unmount) unmounts it
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    fs = LazyFS(Path(backing).resolve())
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind("\0" + control)  # an abstract socket: nothing to clean up, no path length limit
    sock.listen(4)
    go = threading.Event()
    threading.Thread(target=serve_control, args=(fs, sock, go), daemon=True).start()
    # started ahead of need (Python and libfuse loaded), it mounts when told: a remount after a cut
    # then costs a mount, not a process start
    print("lazyfs standing by", flush=True)
    go.wait()
    # one thread serves FUSE (-s): operations are serialised as a disk queue would; auto_unmount has
    # fusermount3 unmount the folder when this process dies, however it dies
    mfusepy.FUSE(fs, mountpoint, foreground=True, nothreads=True, auto_unmount=True, fsname="lazyfs")


if __name__ == "__main__":
    main(sys.argv[1:])
