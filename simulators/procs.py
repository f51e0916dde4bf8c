"""Start the system's own processes (collector, simulators, agents) and wait until they are ready.

Used by the demo, the end-to-end tests and the benchmarks, so they all start things the same way.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

READY_COLLECTOR = re.compile(r"citygate-collector listening on (http://\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bin_path(name: str) -> str:
    """A console script of this installation (next to the running Python)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def _die_with_parent() -> None:
    """In the child before exec: the kernel sends it SIGTERM when the thread that started it dies,
    so a demo killed outright (SIGKILL, a dead terminal) leaves no simulator or agent behind."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


class Proc:
    """A child process whose output is collected (and optionally echoed) by a reader thread."""

    def __init__(self, name: str, argv: Sequence[str], *, env: dict[str, str] | None = None,
                 cwd: Path | None = None, echo: bool = False, die_with_parent: bool = False) -> None:
        self.name = name
        self.argv = list(argv)
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self.popen = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
        self._echo = echo
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()
            if self._echo:
                print(f"[{self.name}] {line}", end="", flush=True)

    def wait_for(self, pattern: re.Pattern[str] | str, timeout: float = 30.0) -> re.Match[str]:
        """The first output line matching `pattern`; raises with the output so far if none in time."""
        rx = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for line in self.lines[seen:]:
                    if m := rx.search(line):
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                ended = self.popen.poll() is not None and not self._reader.is_alive()  # and all its output read
                if left <= 0 or (ended and seen == len(self.lines)):
                    out = "\n".join(self.lines[-40:])
                    raise RuntimeError(f"{self.name} not ready ({rx.pattern!r}), exit={self.popen.poll()}:\n{out}")
                self._cond.wait(min(left, 0.2))

    def output(self) -> str:
        """What the process wrote so far; once it has exited, all it wrote (the reader thread may
        still be reading the pipe's last lines: it is given up to 5 s to reach the end)."""
        if self.popen.poll() is not None:
            self._reader.join(5)
        with self._cond:
            return "\n".join(self.lines)

    def kill9(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(10)

    def stop(self, timeout: float = 10.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        return self.popen.returncode


def wait_tcp(host: str, port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def start_collector(db: str, *, port: int = 0, echo: bool = False, extra: Sequence[str] = (),
                    die_with_parent: bool = False, env: dict[str, str] | None = None) -> tuple[Proc, str]:
    """A collector subprocess on 127.0.0.1; returns it with its base URL once it listens."""
    proc = Proc("collector", [bin_path("citygate-collector"), "serve", "--db", db, "--host", "127.0.0.1",
                              "--port", str(port), *extra], echo=echo, die_with_parent=die_with_parent, env=env)
    url = proc.wait_for(READY_COLLECTOR).group(1)
    return proc, url


def add_gateway(db: str, name: str, commune: str, token_file: Path, *, cabinet: str | None = None,
                location: tuple[float, float] | None = None) -> str:
    """Register a gateway in the collector's store; its token is written to `token_file` and returned."""
    extra = ["--cabinet", cabinet] if cabinet else []
    if location is not None:
        extra += ["--lat", str(location[0]), "--lon", str(location[1])]
    subprocess.run(
        [bin_path("citygate-collector"), "gateway", "add", name, "--commune", commune, "--db", db,
         "--token-file", str(token_file), *extra],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return token_file.read_text().strip()
