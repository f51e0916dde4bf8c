"""Credentials can be revoked: `gateway remove|rotate` and `operator remove|rotate` take effect at once in
a collector that is already running (another process, the same store), and each is audited. Names
are checked where they are created. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import secrets
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import pytest
from collector_testkit import CLI, Client, ServeProcess, assert_problem, batch_body, cli, event, sample

from citygate_wire.batch import decode_batch
from collector.model import RecordCounts
from collector.store import Store, open_store
from collector.tokens import hash_token, new_token
from tests.store_testkit import fresh_db

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
async def running(tmp_path: Path, db_url: str) -> AsyncIterator[Client]:
    async with open_store(db_url):  # create and migrate before the server starts, as an install would
        pass
    proc = ServeProcess(db_url, tmp_path / "serve.log", "--operator-login")
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            yield Client(proc.url, session)
    finally:
        proc.stop()


def add_gateway(db_url: str, tmp_path: Path, name: str) -> str:
    token_file = tmp_path / f"{name}.token"
    cli("gateway", "add", name, "--commune", "21231", "--db", db_url, "--token-file", str(token_file))
    return token_file.read_text().strip()


def add_operator(db_url: str, tmp_path: Path, name: str) -> str:
    token_file = tmp_path / f"{name}.op"
    cli("operator", "add", name, "--db", db_url, "--token-file", str(token_file))
    return token_file.read_text().strip()


async def status_with(client: Client, path: str, token: str) -> int:
    async with client.session.get(client.url + path, headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status


async def test_a_removed_gateway_is_refused_at_once_by_the_running_collector(
        tmp_path: Path, db_url: str, running: Client) -> None:
    token = add_gateway(db_url, tmp_path, "gw-a")
    other = add_gateway(db_url, tmp_path, "gw-b")
    status, _, doc = await running.post(batch_body("gw-a", [sample(1)]), token)
    assert status == 200, doc
    out = cli("gateway", "remove", "gw-a", "--db", db_url).stdout
    assert "gw-a removed" in out and "mqtt-acl" in out
    status, ctype, doc = await running.post(batch_body("gw-a", [sample(2)]), token)
    assert_problem(status, ctype, doc, 401)
    status, _, doc = await running.post(batch_body("gw-b", [sample(1)]), other)  # the others go on
    assert status == 200, doc
    listed = cli("gateway", "list", "--db", db_url).stdout
    assert "gw-b" in listed and "gw-a" not in listed
    # its name stays with its history: it is not given to a new gateway
    again = cli("gateway", "add", "gw-a", "--commune", "21231", "--db", db_url, check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    gone = cli("gateway", "remove", "gw-a", "--db", db_url, check=False)
    assert gone.returncode == 1 and "no gateway named 'gw-a'" in gone.stderr


async def test_a_rotated_gateway_token_replaces_the_old_one_at_once(
        tmp_path: Path, db_url: str, running: Client) -> None:
    old = add_gateway(db_url, tmp_path, "gw-a")
    assert (await running.post(batch_body("gw-a", [sample(1)]), old))[0] == 200
    new_file = tmp_path / "gw-a.new"
    cli("gateway", "rotate", "gw-a", "--db", db_url, "--token-file", str(new_file))
    new = new_file.read_text().strip()
    assert new != old and new_file.stat().st_mode & 0o777 == 0o600
    status, ctype, doc = await running.post(batch_body("gw-a", [sample(2)]), old)
    assert_problem(status, ctype, doc, 401)
    status, _, doc = await running.post(batch_body("gw-a", [sample(2)]), new)
    assert status == 200 and doc["stored"] == 1, doc


async def test_removed_and_rotated_operators_are_refused_at_once_and_all_of_it_is_audited(
        tmp_path: Path, db_url: str, running: Client) -> None:
    alice = add_operator(db_url, tmp_path, "alice")
    bob = add_operator(db_url, tmp_path, "bob")
    for token in (alice, bob):
        assert await status_with(running, "/api/v1/gateways", token) == 200
    listed = cli("operator", "list", "--db", db_url).stdout
    assert listed.splitlines()[1].startswith("alice ") and listed.splitlines()[2].startswith("bob ")

    cli("operator", "remove", "alice", "--db", db_url)
    assert await status_with(running, "/api/v1/gateways", alice) == 401
    assert await status_with(running, "/api/v1/control/presence", alice) == 401
    assert "alice" not in cli("operator", "list", "--db", db_url).stdout

    rotated = cli("operator", "rotate", "bob", "--db", db_url)
    new_bob = rotated.stdout.strip()
    assert new_bob.startswith("cop_") and "not shown again" in rotated.stderr
    assert await status_with(running, "/api/v1/gateways", bob) == 401
    assert await status_with(running, "/api/v1/gateways", new_bob) == 200

    missing = cli("operator", "rotate", "carol", "--db", db_url, check=False)
    assert missing.returncode == 1 and "no operator named 'carol'" in missing.stderr
    add_gateway(db_url, tmp_path, "gw-a")
    cli("gateway", "rotate", "gw-a", "--db", db_url, "--token-file", str(tmp_path / "t"))
    cli("gateway", "remove", "gw-a", "--db", db_url)
    log = [line.split("\t") for line in cli("audit", "--db", db_url).stdout.splitlines()]
    assert [(row[2], row[3]) for row in log] == [
        ("gateway.remove", "gw-a"), ("gateway.rotate", "gw-a"), ("gateway.add", "gw-a"),
        ("operator.rotate", "bob"), ("operator.remove", "alice"),
        # an operator is added with a rank (operator by default), and the rank given is audited with it
        ("operator.roles", "bob"), ("operator.add", "bob"), ("operator.roles", "alice"), ("operator.add", "alice"),
    ]
    assert all(row[1].startswith("cli:") for row in log)


@pytest.mark.parametrize("name", [
    "", "gw/a", "gw+", "gw#1", "gw a", "gw\ta", "gw-a\n", "gw\x1ba", "g" * 65, "citygate-collector", "-gw",
])
def test_gateway_add_refuses_a_name_the_broker_or_the_topics_could_not_carry(
        tmp_path: Path, name: str) -> None:
    db = str(tmp_path / "collector.db")
    refused = cli("gateway", "add", name, "--commune", "21231", "--db", db, check=False)
    assert refused.returncode == 2 and "NAME" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr
    assert "no collector database" in cli("gateway", "list", "--db", db, check=False).stderr  # nothing created
    cli("gateway", "add", "g" * 64, "--commune", "21231", "--db", db, "--token-file", str(tmp_path / "t"))


# -- the database URL's password: never in ps, logs or errors ----------------------------------

def now_ms() -> int:
    return time.time_ns() // 1_000_000


PASSWORD = "pw-" + secrets.token_hex(8)


def with_password(url: str, password: str = PASSWORD) -> str:
    parts = urlsplit(url)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.partition(':')[0] or 'postgres'}:{password}@{host}"))


def serve_with(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    log = (tmp_path / "serve.log").open("w")
    clean = {k: v for k, v in os.environ.items() if k not in ("CITYGATE_DB", "CITYGATE_DB_FILE")}
    return subprocess.Popen([CLI, "serve", "--port", "0", *args], stdout=subprocess.PIPE, stderr=log, text=True,
                            env={**clean, "PYTHONUNBUFFERED": "1", **env})


def listening(proc: subprocess.Popen[str], tmp_path: Path) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert "listening on" in line, (tmp_path / "serve.log").read_text()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)
    if proc.stdout is not None:
        proc.stdout.close()


@pytest.mark.parametrize("given_by", ["env", "file", "env-file"])
async def test_the_database_password_never_shows_in_ps_nor_the_log(tmp_path: Path, given_by: str) -> None:
    async with fresh_db("postgresql", tmp_path) as url:
        secret_url = with_password(url)
        url_file = tmp_path / "db-url"
        url_file.write_text(secret_url + "\n")
        args, env = {
            "env": ((), {"CITYGATE_DB": secret_url}),
            "file": (("--db-file", str(url_file)), {}),
            "env-file": ((), {"CITYGATE_DB_FILE": str(url_file)}),
        }[given_by]
        proc = serve_with(tmp_path, *args, env=env)
        try:
            listening(proc, tmp_path)
            cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().decode()
            assert "serve" in cmdline and PASSWORD not in cmdline
        finally:
            stop(proc)
    assert PASSWORD not in (tmp_path / "serve.log").read_text()


@pytest.mark.parametrize("broken", [
    "postgresql://postgres:{pw}@127.0.0.1:1/test",  # nobody listens there
    "postgresql://postgres:{pw}@127.0.0.1:notaport/test",
    "postgresql://postgres@127.0.0.1:1/test?password={pw}",
    "postgresql://postgres:{pw}@[::1/test",
    "mysql://root:{pw}@127.0.0.1/citygate",
])
def test_a_database_that_cannot_be_opened_is_a_clear_error_without_its_password(
        tmp_path: Path, broken: str) -> None:
    proc = serve_with(tmp_path, env={"CITYGATE_DB": broken.format(pw=PASSWORD)})
    assert proc.wait(timeout=60) == 1
    stop(proc)
    err = (tmp_path / "serve.log").read_text()
    assert "Error:" in err and "Traceback" not in err, err
    assert PASSWORD not in err, err
    other = cli("gateway", "list", "--db", broken.format(pw=PASSWORD), check=False)
    assert other.returncode == 1 and PASSWORD not in other.stderr + other.stdout


async def test_a_password_on_the_command_line_is_warned_about(tmp_path: Path) -> None:
    async with fresh_db("postgresql", tmp_path) as url:
        proc = serve_with(tmp_path, "--db", with_password(url), env={})
        try:
            listening(proc, tmp_path)
        finally:
            stop(proc)
    log = (tmp_path / "serve.log").read_text()
    assert "ps shows it" in log and PASSWORD not in log
    both = cli("serve", "--db", "x.db", "--db-file", str(tmp_path / "serve.log"), check=False)
    assert both.returncode == 2 and "not both" in both.stderr


def test_a_trusted_proxy_that_is_no_address_is_refused_before_serving(tmp_path: Path) -> None:
    refused = cli("serve", "--db", str(tmp_path / "c.db"), "--port", "0", "--trusted-proxy", "10.0.0.0/8",
                  "--trusted-proxy", "proxy.example", check=False)
    assert refused.returncode == 2 and "'proxy.example' is no IP address" in refused.stderr


async def test_a_removed_gateway_leaves_no_open_fault_or_alarm_behind(store: Store) -> None:
    now = now_ms()
    for name in ("gw-a", "gw-b"):
        gateway = await store.add_gateway(name, "21231", hash_token(new_token()))
        batch = decode_batch(batch_body(name, [event(1, "lamp_failure", ts_ms=now - 60_000),
                                               event(2, "door_open", "critical", "cabinet", ts_ms=now - 30_000)]))
        await store.ingest(gateway, batch.records)
    assert {f.gateway for f in await store.open_lamp_faults()} == {"gw-a", "gw-b"}
    assert {a.gateway for a in await store.open_event_alarms(now - 3600_000)} == {"gw-a", "gw-b"}
    assert await store.remove_gateway("gw-a", "test", now)
    # nobody could clear them any more: they would stay on the operators' screen for good
    assert {f.gateway for f in await store.open_lamp_faults()} == {"gw-b"}
    assert {a.gateway for a in await store.open_event_alarms(now - 3600_000)} == {"gw-b"}
    assert [p.gateway for p in await store.presence()] == ["gw-b"]
    assert await store.gateway("gw-a") is None and [i.gateway.name for i in await store.gateways()] == ["gw-b"]
    assert await store.count_records() == RecordCounts(0, 4)  # its records stay in the store
