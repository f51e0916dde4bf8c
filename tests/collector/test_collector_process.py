"""The collector as it runs in production: the CLI, `serve` in a subprocess, kill -9 mid-upload."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from collector_testkit import (
    CLI,
    ServeProcess,
    assert_problem,
    batch_body,
    cli,
    event,
    gzip,
    gzip_bomb,
    sample,
)

from citygate_wire.batch import PATH
from collector.model import RecordCounts
from collector.store import open_store


def add_gateway(db_url: str, name: str, commune: str = "21231") -> str:
    result = cli("gateway", "add", name, "--commune", commune, "--db", db_url)
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout  # the token, and nothing else, on stdout
    return lines[0]


async def post(session: aiohttp.ClientSession, url: str, token: str, body: bytes) -> tuple[int, str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with session.post(url + PATH, data=gzip(body), headers=headers) as resp:
        return resp.status, resp.content_type, orjson.loads(await resp.read())


def test_gateway_add_prints_a_token_once_and_list_shows_it(db_url: str) -> None:
    db = db_url
    token = add_gateway(db, "gw-talant-0001", "21617")
    assert token.startswith("cgw_") and len(token) > 40
    again = cli("gateway", "add", "gw-talant-0001", "--commune", "21617", "--db", db, check=False)
    assert again.returncode != 0
    assert "already exists" in again.stderr
    assert again.stdout == ""  # no second token for the same name
    listing = cli("gateway", "list", "--db", db).stdout
    assert "gw-talant-0001" in listing and "21617" in listing and "never" in listing
    assert token not in listing


def test_token_file_is_private_and_the_env_names_the_database(db_url: str, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    env = {**os.environ, "CITYGATE_DB": db_url}
    result = subprocess.run([CLI, "gateway", "add", "gw-1", "--commune", "21231", "--token-file", str(token_file)],
                            capture_output=True, text=True, env=env, timeout=60, check=True)
    token = token_file.read_text().strip()
    assert token.startswith("cgw_")
    assert token not in result.stdout + result.stderr
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    listing = subprocess.run([CLI, "gateway", "list"], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert "gw-1" in listing.stdout


def test_a_token_written_over_a_readable_file_is_private_and_a_missing_folder_issues_none(
        db_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "CITYGATE_DB": db_url}
    token_file = tmp_path / "token"
    token_file.write_text("an old, world-readable file\n")
    token_file.chmod(0o644)
    subprocess.run([CLI, "gateway", "add", "gw-1", "--commune", "21231", "--token-file", str(token_file)],
                   capture_output=True, text=True, env=env, timeout=60, check=True)
    assert token_file.read_text().startswith("cgw_")
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".token")]  # no temporary file left
    for command in (["gateway", "add", "gw-2", "--commune", "21231"], ["operator", "add", "alice"]):
        missing = tmp_path / "no-such-folder" / "token"
        refused = subprocess.run([CLI, *command, "--token-file", str(missing)],
                                 capture_output=True, text=True, env=env, timeout=60, check=False)
        assert refused.returncode == 2, refused.stderr
        assert "does not exist" in refused.stderr and "--token-file" in refused.stderr
    listing = subprocess.run([CLI, "gateway", "list"], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert "gw-1" in listing.stdout and "gw-2" not in listing.stdout  # no token was issued that nobody holds


async def test_served_collector_accepts_a_token_from_the_cli(db_url: str, tmp_path: Path,
                                                             serve_process: list[ServeProcess]) -> None:
    db = db_url
    token = add_gateway(db, "gw-1")
    serve_process.append(ServeProcess(db, tmp_path / "serve.log"))
    url = serve_process[0].url
    async with aiohttp.ClientSession() as session:
        status, _, doc = await post(session, url, token, batch_body("gw-1", [sample(1), event(2)]))
        assert (status, doc) == (200, {"ack_seq": 2, "stored": 2, "duplicates": 0})
    listing = cli("gateway", "list", "--db", db).stdout
    assert "never" not in listing


async def test_gzip_bomb_costs_the_server_bounded_memory(db_url: str, tmp_path: Path,
                                                         serve_process: list[ServeProcess]) -> None:
    db = db_url
    token = add_gateway(db, "gw-1")
    proc = ServeProcess(db, tmp_path / "serve.log")
    serve_process.append(proc)
    bomb = gzip_bomb()  # 1 GiB of zeros
    headers = {"Authorization": f"Bearer {token}", "Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with aiohttp.ClientSession() as session:
        started = time.monotonic()
        async with session.post(proc.url + PATH, data=bomb, headers=headers) as resp:
            assert_problem(resp.status, resp.content_type, orjson.loads(await resp.read()), 413)
        assert time.monotonic() - started < 10
    # the default limit is 16 MiB decompressed: the peak stays far below the 1 GiB the bomb holds
    assert proc.peak_rss_kib() < 300 * 1024
    async with open_store(db) as store:
        assert await store.count_records() == RecordCounts(0, 0)


async def test_kill_9_mid_upload_then_resend_loses_nothing_and_duplicates_nothing(
    db_url: str, tmp_path: Path, serve_process: list[ServeProcess]
) -> None:
    db = db_url
    names = ["gw-a", "gw-b", "gw-c"]
    tokens = {name: add_gateway(db, name) for name in names}
    per_batch, n_batches = 400, 40
    batches = {
        name: [
            batch_body(name, [sample(s) if s % 50 else event(s) for s in range(b * per_batch + 1, (b + 1) * per_batch + 1)])
            for b in range(n_batches)
        ]
        for name in names
    }
    acked: dict[str, int] = dict.fromkeys(names, 0)  # highest ack_seq each gateway received
    serve_process.append(ServeProcess(db, tmp_path / "serve.log"))
    url = serve_process[0].url

    async def uploader(session: aiohttp.ClientSession, name: str) -> None:
        for body in batches[name]:
            try:
                status, _, doc = await post(session, url, tokens[name], body)
            except (aiohttp.ClientError, OSError):
                return  # the collector died under us
            assert status == 200, doc
            acked[name] = int(doc["ack_seq"])

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        tasks = [asyncio.create_task(uploader(session, name)) for name in names]
        deadline = time.monotonic() + 60
        while sum(acked.values()) < 15 * per_batch and time.monotonic() < deadline:
            await asyncio.sleep(0.005)
        serve_process[0].kill9()  # while the uploaders are still sending
        await asyncio.gather(*tasks)
    total_acked = sum(acked.values())
    print(f"acknowledged before the kill: {acked}")
    assert 15 * per_batch <= total_acked < len(names) * n_batches * per_batch, "kill came too late to prove anything"

    async with open_store(db) as store:
        for info in await store.gateways():
            name = info.gateway.name
            samples = await store.recent_samples(info.gateway, "lamp-1", limit=100_000)
            events = await store.recent_events(info.gateway, limit=100_000)
            seqs = sorted([s.seq for s in samples] + [e.seq for e in events if e.seq is not None])
            assert len(seqs) % per_batch == 0, "a batch was stored in part"
            assert seqs == list(range(1, len(seqs) + 1))
            assert len(seqs) >= acked[name], "an acknowledged record was lost"

    serve_process.append(ServeProcess(db, tmp_path / "serve.log"))
    url = serve_process[1].url
    async with aiohttp.ClientSession() as session:
        for name in names:  # everything again: the unacknowledged part, and the acknowledged one as duplicates
            stored = 0
            for body in batches[name]:
                status, _, doc = await post(session, url, tokens[name], body)
                assert status == 200 and doc["stored"] + doc["duplicates"] == per_batch
                stored += int(doc["stored"])
            assert stored <= n_batches * per_batch - acked[name]

    async with open_store(db) as store:
        expected = n_batches * per_batch
        for info in await store.gateways():
            name = info.gateway.name
            counts = await store.count_records(info.gateway)
            assert counts.samples + counts.events == expected
            samples = await store.recent_samples(info.gateway, "lamp-1", limit=100_000)
            events = await store.recent_events(info.gateway, limit=100_000)
            assert sorted([s.seq for s in samples] + [e.seq for e in events if e.seq is not None]) == list(
                range(1, expected + 1))
            # rollups are written in the batch's transaction: they count every record exactly once
            days = await store.rollups("gateway", "day", name, "2025-01-01", "2026-12-31")
            assert sum(d.samples + d.events for d in days) == expected


async def test_serve_with_operator_login_asks_the_read_api_for_an_operator(db_url: str, tmp_path: Path,
                                                                            serve_process: list[ServeProcess]) -> None:
    token = add_gateway(db_url, "gw-1")
    serve_process.append(ServeProcess(db_url, tmp_path / "serve.log", "--operator-login"))
    url = serve_process[0].url
    async with aiohttp.ClientSession() as session:
        async with session.get(url + "/api/v1/gateways") as resp:
            assert resp.status == 401 and resp.content_type == "application/problem+json"
        async with session.get(url + "/control/", allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"].startswith("/control/login")
        status, _, doc = await post(session, url, token, batch_body("gw-1", [sample(1)]))  # gateways as before
        assert (status, doc["stored"]) == (200, 1)
