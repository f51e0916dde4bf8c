"""Operators' ranks on EVERY route of the app (enumerated from app.router, so a route added later is
checked too): reads need a viewer, writes an operator, traffic commands a supervisor; nobody known is
a 401. With and without --operator-login, on both stores. And the CLI that gives the ranks."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from pathlib import Path

import aiohttp
import pytest
from click.testing import CliRunner

from citygate_wire.mqtt import ACTIONS
from collector.access import protected
from collector.app import create_app, start
from collector.cli import main
from collector.control.cli import readable_seq
from collector.control.commands import ACTION_RANK
from collector.credentials import LEVELS
from collector.store import Store, open_store
from collector.tokens import hash_token

pytestmark = pytest.mark.timeout(120)

#: routes that ask more than the floor (a read: viewer; a write: operator)
SUPERVISOR_ROUTES = {("POST", "/api/v1/control/junctions/{junction}/mode")}
#: a stream answers its headers and runs on: its status is all that is read
RANKS = ("anonymous", *LEVELS)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def add_operator(store: Store, name: str, roles: frozenset[str]) -> str:
    token = "cop_" + secrets.token_urlsafe(24)
    await store.add_operator(name, hash_token(token), now_ms())
    assert await store.set_operator_roles(name, roles, "test", now_ms())
    return token


def needed(method: str, template: str) -> str:
    if (method, template) in SUPERVISOR_ROUTES:
        return "supervisor"
    return "viewer" if method == "GET" else "operator"


def every_route(app: object) -> list[tuple[str, str, str]]:
    """(method, template, path) of every route, its parameters filled with '1'."""
    out = []
    for resource in app.router.resources():  # type: ignore[attr-defined]
        info = resource.get_info()
        template = info.get("formatter") or info.get("path") or ""
        for route in resource:
            if route.method == "HEAD":
                continue
            out.append((route.method, template, re.sub(r"\{[^}]+\}", "1", template)))
    assert len(out) > 40, "the app's routes were not found"
    return sorted(set(out))


async def status_of(session: aiohttp.ClientSession, url: str, method: str, headers: dict[str, str]) -> int:
    async with session.request(method, url, headers=headers, allow_redirects=False,
                               json=None if method == "GET" else {}) as resp:
        return resp.status  # a stream's headers are enough: it is not read


@pytest.mark.parametrize("operator_login", [True, False], ids=["login", "no-login"])
async def test_every_route_asks_its_rank(store: Store, operator_login: bool) -> None:
    app = create_app(store, operator_login=operator_login)
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        tokens = {rank: await add_operator(store, f"op-{rank}", frozenset({rank})) for rank in LEVELS}
        routes = every_route(app)
        wrong: list[str] = []
        checked = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                         cookie_jar=aiohttp.DummyCookieJar()) as session:
            for method, template, path in routes:
                if not protected(path):
                    continue  # open data, Open311, NGSI-LD, the gateways' batches, login: no rank
                need = needed(method, template)
                for rank in RANKS:
                    headers = {} if rank == "anonymous" else {"Authorization": f"Bearer {tokens[rank]}"}
                    status = await status_of(session, url + path, method, headers)
                    checked += 1
                    if rank == "anonymous":
                        open_read = not operator_login and method == "GET" and "/api/v1/control/" not in path
                        ok = status not in (401, 403) if open_read else status in (401, 303)
                    elif LEVELS.index(rank) < LEVELS.index(need):
                        ok = status == 403
                    else:
                        ok = status not in (401, 403)
                    if not ok:
                        wrong.append(f"{method} {path} as {rank} (needs {need}): {status}")
        assert checked > 100
        assert not wrong, "\n".join(wrong)
    finally:
        await runner.cleanup()


async def test_a_cookie_write_comes_from_this_site_only(store: Store) -> None:
    app = create_app(store, operator_login=True)
    runner, url = await start(app, "127.0.0.1", 0)
    try:
        token = await add_operator(store, "op", frozenset({"operator"}))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30),
                                         cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            async with session.post(url + "/control/login", data={"token": token}, allow_redirects=False) as r:
                assert r.status == 303
            body = {"gateway": "nowhere", "action": "device.read", "args": {"device": "x"}}
            async with session.post(url + "/api/v1/control/commands", json=body,
                                    headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 403 and (await r.json())["type"].endswith("foreign-origin")
            async with session.post(url + "/api/v1/control/commands", json=body, headers={"Origin": url}) as r:
                assert r.status == 503  # past the checks: this collector has no broker
            async with session.get(url + "/api/v1/control/commands", headers={"Origin": "https://evil.example"}) as r:
                assert r.status == 200  # a read changes nothing
    finally:
        await runner.cleanup()


def test_every_action_a_gateway_takes_has_a_rank() -> None:
    assert set(ACTION_RANK) == set(ACTIONS)
    assert {a for a, rank in ACTION_RANK.items() if rank == "supervisor"} == {"traffic.select_plan",
                                                                             "traffic.set_position"}


def run(*args: str, code: int = 0) -> str:
    done = CliRunner().invoke(main, list(args))
    assert done.exit_code == code, done.output
    return done.output


def test_operator_ranks_from_the_cli(db_url: str, tmp_path: Path) -> None:
    run("operator", "add", "alice", "--db", db_url, "--token-file", str(tmp_path / "a"))
    run("operator", "add", "bob", "--role", "supervisor", "--role", "police", "--db", db_url,
        "--token-file", str(tmp_path / "b"))
    run("operator", "add", "carol", "--role", "viewer", "--db", db_url, "--token-file", str(tmp_path / "c"))
    assert "one rank at most" in run("operator", "add", "dan", "--role", "viewer", "--role", "operator",
                                     "--db", db_url, code=2)
    assert "operator carol: supervisor" in run("operator", "roles", "carol", "--role", "supervisor", "--db", db_url)

    async def legacy_and_login() -> None:
        async with open_store(db_url) as store:
            await store.add_operator("eve", hash_token("x" * 40), now_ms())  # as before ranks: none held
            await store.open_session("bob", "ab" * 32, now_ms(), now_ms() + 60_000, "127.0.0.1")
            assert await store.last_logins() == {"bob": pytest.approx(now_ms(), abs=60_000)}

    asyncio.run(legacy_and_login())
    listed = run("operator", "list", "--db", db_url)
    lines = listed.splitlines()
    assert all(len(line) <= 80 for line in lines), listed
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip() and not line.startswith("*")}
    assert rows["alice"][1:3] == ["operator", "-"] and rows["alice"][-2:] == ["never", "0"]
    assert rows["bob"][1:3] == ["supervisor", "police"] and rows["bob"][-1] == "1" and "never" not in rows["bob"]
    assert rows["carol"][1] == "supervisor" and rows["eve"][1] == "operator*" and "never" in rows["eve"]
    assert "* no rank given" in listed


def test_gateway_list_never_creates_a_database_and_reads_its_numbers(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "collector.db"
    for args in (["gateway", "list"], ["operator", "list"], ["command", "list"], ["audit"]):
        out = run(*args, "--db", str(missing), code=1)
        assert f"no collector database at {missing}" in out, out
        assert not missing.exists() and not missing.parent.exists()
    db = str(tmp_path / "collector.db")
    run("gateway", "add", "gw-cabinet-with-a-long-name-0001", "--commune", "21231", "--cabinet", "C-12",
        "--db", db, "--token-file", str(tmp_path / "t"))
    out = run("gateway", "list", "--db", db)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines), out
    # a name too long for its column folds onto the next line, whole
    assert "".join(line.split()[0] for line in lines[1:]) == "gw-cabinet-with-a-long-name-0001", out


def test_sequence_numbers_read_as_a_person_reads_them() -> None:
    assert readable_seq(None) == "-"
    assert readable_seq(1234567) == "1,234,567"
    # a journal numbers from its creation instant in microseconds
    assert readable_seq(1_764_096_000_000_000 + 1_234_567) == "1,764,096,001,234,567 (journal of 2025-11-25)"
