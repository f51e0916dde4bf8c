"""Mount, cut and unmount the power-cut filesystem (tests/powercut/lazyfs.py) from a test.

The filesystem runs in its own process, started here; `LazyMount` is a context manager whose
exit always unmounts (`fusermount3 -u`), whether the test passed or not. Mounting fails loudly
(no skip) when FUSE is not usable: the power-cut tests are not optional.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from simulators.procs import Proc

LAZYFS = Path(__file__).with_name("lazyfs.py")
REPO = Path(__file__).resolve().parents[2]


def is_mounted(path: Path) -> bool:
    target = str(path.parent.resolve() / path.name)  # not path.resolve(): it would stat a frozen mount
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == target for line in mounts)


def fuse_available() -> None:
    """Fail with the reason when this machine cannot mount FUSE (the tests must not skip)."""
    assert os.path.exists("/dev/fuse"), "/dev/fuse is missing: the power-cut tests need FUSE"
    assert shutil.which("fusermount3"), "fusermount3 is missing: install Debian's fuse3 (.ci/run does)"


@dataclass
class _Server:
    proc: Proc
    control: str  # the name of its abstract Unix socket: no file to clean up, no path length limit


class LazyMount:
    """`with LazyMount(root) as m:` the folder `m.mountpoint` shows `m.backing` through the filesystem.

    A second filesystem process stands by (Python and libfuse loaded), so the remount after a cut
    costs a mount rather than a process start."""

    def __init__(self, root: Path) -> None:
        self.backing = root / "disk"
        self.mountpoint = root / "mnt"
        self.server: _Server | None = None
        self.standby: _Server | None = None

    def __enter__(self) -> LazyMount:
        self.mount()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unmount()
        if self.standby is not None:
            self.standby.proc.stop()
            self.standby = None

    def _spawn(self) -> _Server:
        control = f"citygate-lazyfs-{secrets.token_hex(6)}"
        proc = Proc("lazyfs", [sys.executable, str(LAZYFS), str(self.backing), str(self.mountpoint), control],
                    cwd=REPO)
        return _Server(proc, control)

    def mount(self) -> None:
        self.backing.mkdir(parents=True, exist_ok=True)
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self.server, self.standby = self.standby or self._spawn(), None
        try:
            self.server.proc.wait_for("lazyfs standing by", timeout=30)
            self.command("mount")
            self.server.proc.wait_for("lazyfs mounted", timeout=30)
        except BaseException:
            self.unmount()
            raise
        assert is_mounted(self.mountpoint), f"lazyfs said it mounted, /proc/self/mounts disagrees:\n{self.output()}"
        self.standby = self._spawn()

    def command(self, line: str) -> str:
        assert self.server is not None, "lazyfs is not running"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect("\0" + self.server.control)
            s.sendall(line.encode() + b"\n")
            reply = s.makefile("rb").readline().decode().strip()
        if not reply.startswith("ok"):
            raise RuntimeError(f"lazyfs {line!r}: {reply or 'no answer'}\n{self.output()}")
        return reply

    def freeze_after(self, operations: int) -> None:
        """Stop the filesystem right after the `operations`-th next write, truncate, sync or name change."""
        self.command(f"freeze {operations}")

    def wait_frozen(self, timeout: float) -> bool:
        assert self.server is not None, "lazyfs is not running"
        try:
            self.server.proc.wait_for("lazyfs frozen", timeout=timeout)
        except RuntimeError:
            return False
        return True

    def cut(self, mode: str = "drop", seed: int = 0) -> str:
        """Power cut: unsynced data is lost (`drop`), but for a sector prefix of each file's last
        written page (`tear`), or but for a random half of the unsynced pages and a torn last page
        (`scatter`); the filesystem process ends and the folder is unmounted. Returns the
        filesystem's report (tests/powercut/lazyfs.py)."""
        reply = self.command(f"cut {mode} {seed}")
        assert self.server is not None
        self.server.proc.popen.wait(10)
        self.unmount()
        return reply

    def remount(self) -> None:
        self.unmount()
        self.mount()

    def output(self) -> str:
        return self.server.proc.output() if self.server is not None else ""

    def unmount(self) -> None:
        """Unmount, and end the filesystem's process. A mount still busy after a few seconds (a test
        failed with a writer waiting on a frozen filesystem) gets its process killed, which fails
        whatever waits on it, then a lazy unmount as the last resort."""
        deadline = time.monotonic() + 3
        while is_mounted(self.mountpoint) and time.monotonic() < deadline:
            # after a cut fusermount3's auto_unmount may get there first: then ours finds nothing to do
            subprocess.run(["fusermount3", "-u", str(self.mountpoint)], capture_output=True, timeout=30)
            if is_mounted(self.mountpoint):
                time.sleep(0.05)
        if self.server is not None:
            self.server.proc.kill9() if is_mounted(self.mountpoint) else self.server.proc.stop()
            self.server = None
        if is_mounted(self.mountpoint):
            subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], capture_output=True, timeout=30)
