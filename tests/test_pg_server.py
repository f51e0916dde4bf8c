"""The tests' PostgreSQL: without $CITYGATE_TEST_PG a session starts its own and stops it; with it,
that server is used; one that cannot be reached fails each PostgreSQL test with one line, never a skip."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from tests.pg_server import ENV, start_server

REPO = Path(__file__).resolve().parents[1]

# A session of its own (a pytest subprocess) using the repository's fixtures: its PostgreSQL test
# writes down which server it got.
SESSION_TEST = '''
import json, os
from tests.pg_server import own_server

def test_store(db_url):
    own = own_server()
    with open(os.environ["REPORT"], "w") as f:
        json.dump({"url": db_url, "pid": own and own.process.pid, "folder": own and str(own.folder)}, f)
'''


def run_session(tmp_path: Path, pg: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["tests.conftest"]\n')
    (tmp_path / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (tmp_path / "test_session.py").write_text(SESSION_TEST)
    env = {k: v for k, v in os.environ.items() if k != ENV}
    env |= {"PYTHONPATH": str(REPO), "REPORT": str(tmp_path / "report.json")}
    if pg is not None:
        env[ENV] = pg
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         "-k", "postgresql", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    return done, tmp_path / "report.json"


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_without_the_variable_a_session_starts_its_own_server_and_stops_it(tmp_path: Path) -> None:
    done, report = run_session(tmp_path, None)
    assert done.returncode == 0, done.stdout + done.stderr
    got = json.loads(report.read_text())
    assert got["url"].startswith("postgresql://postgres@127.0.0.1:") and "?schema=cg_test_" in got["url"]
    assert got["pid"] and not alive(got["pid"]), "the session's server outlived it"
    assert not Path(got["folder"]).exists(), "the server's temp folder was left behind"


def test_the_variable_selects_an_existing_server(tmp_path: Path) -> None:
    server = start_server()
    try:
        done, report = run_session(tmp_path, server.url)
        assert done.returncode == 0, done.stdout + done.stderr
        got = json.loads(report.read_text())
        assert got["url"].startswith(server.url + "?schema=cg_test_")
        assert got["pid"] is None  # it started none of its own
        assert server.process.poll() is None  # and left the given one running
    finally:
        server.stop()


def test_an_unreachable_server_fails_each_postgresql_test_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/test"
    (tmp_path / "test_more.py").write_text("def test_a(db_url): pass\n\ndef test_b(db_url): pass\n")
    done, _ = run_session(tmp_path, url)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "3 errors" in out and "skipped" not in out
    reason = (f"PostgreSQL at ${ENV}={url} is unreachable (ConnectionRefusedError: [Errno 111] "
              f"Connect call failed ('127.0.0.1', {url.split(':')[2].split('/')[0]})); start it, "
              f"or unset {ENV} to let the tests start their own")
    # one line a test in the errors section (the short summary repeats it, cut to the terminal's
    # width or not: pytest does not cut it when $CI is set)
    errors_section = out.split("short test summary info")[0]
    assert errors_section.count(reason) == 3, out
    assert "Traceback" not in out and "asyncpg" not in out, out


def test_the_server_dies_with_a_killed_test_process(tmp_path: Path) -> None:
    script = ("import time\nfrom tests.pg_server import start_server\n"
              "s = start_server()\nprint(s.process.pid, s.folder, flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stdout=subprocess.PIPE, text=True,
                            env=os.environ | {"PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    pid_text, folder = proc.stdout.readline().split()
    pid = int(pid_text)
    try:
        assert alive(pid)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid)
    finally:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", folder], check=True)


async def test_a_started_server_is_empty_and_listens_on_loopback_only() -> None:
    server = start_server()
    try:
        conn = await asyncpg.connect(server.url, timeout=10)
        try:
            assert await conn.fetchval("SHOW listen_addresses") == "127.0.0.1"
            assert await conn.fetchval("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'cg_test_%'") == 0
        finally:
            await conn.close()
    finally:
        server.stop()
    assert not server.folder.exists()
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncpg.connect(server.url, timeout=2), 5)
